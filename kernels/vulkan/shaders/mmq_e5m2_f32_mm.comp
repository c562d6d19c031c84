#version 450
/* e5m2 weights, f32 activations: tiled matrix-matrix (prefill, batches); see mmq_body.glsl. */
#define FMT_E5M2 1
#define ACT_F32 1
#define RM 4
#define TN 8
#include "mmq_body.glsl"
