#version 450
/* i2 weights, i8 activations, integer dot products (shaderIntegerDotProduct): matrix-vector (decode); see
 * mmq_body.glsl. */
#define FMT_I2 1
#define ACT_I8 1
#define INTDOT 1
#define RM 2
#define TN 1
#include "mmq_body.glsl"
