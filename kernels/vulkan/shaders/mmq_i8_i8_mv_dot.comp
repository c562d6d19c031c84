#version 450
/* i8 weights, i8 activations, integer dot products (shaderIntegerDotProduct): matrix-vector (decode); see
 * mmq_body.glsl. */
#define FMT_I8 1
#define ACT_I8 1
#define INTDOT 1
#define RM 2
#define TN 1
#include "mmq_body.glsl"
