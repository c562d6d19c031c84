#version 450
/* e4m3 weights, fp8 activations: matrix-vector (decode); see mmq_body.glsl. */
#define FMT_E4M3 1
#define ACT_FP8 1
#define RM 2
#define TN 1
#include "mmq_body.glsl"
