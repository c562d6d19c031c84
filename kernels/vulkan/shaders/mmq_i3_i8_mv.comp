#version 450
/* i3 weights, i8 activations: matrix-vector (decode); see mmq_body.glsl. */
#define FMT_I3 1
#define ACT_I8 1
#define RM 2
#define TN 1
#include "mmq_body.glsl"
