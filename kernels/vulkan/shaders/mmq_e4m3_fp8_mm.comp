#version 450
/* e4m3 weights, fp8 activations: tiled matrix-matrix (prefill, batches); see mmq_body.glsl. */
#define FMT_E4M3 1
#define ACT_FP8 1
#define RM 4
#define TN 8
#include "mmq_body.glsl"
