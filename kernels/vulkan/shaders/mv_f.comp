#version 450
#define SUBGROUP 0
#include "mv_f.glsl"
