#version 450
/* i4 weights, f32 activations: tiled matrix-matrix (prefill, batches); see mmq_body.glsl. */
#define FMT_I4 1
#define ACT_F32 1
#define RM 4
#define TN 8
#include "mmq_body.glsl"
