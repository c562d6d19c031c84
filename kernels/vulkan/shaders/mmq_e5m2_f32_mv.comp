#version 450
/* e5m2 weights, f32 activations: matrix-vector (decode); see mmq_body.glsl. */
#define FMT_E5M2 1
#define ACT_F32 1
#define RM 2
#define TN 1
#include "mmq_body.glsl"
