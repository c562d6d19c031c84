#version 450
/* i2 weights, i8 activations, integer dot products (shaderIntegerDotProduct): tiled matrix-matrix (prefill, batches); see
 * mmq_body.glsl. */
#define FMT_I2 1
#define ACT_I8 1
#define INTDOT 1
#define RM 4
#define TN 8
#include "mmq_body.glsl"
