#!/bin/sh
# Calibrated-quantization quality benchmark (docs/quality.md): builds tools/quality.c against
# build/libqbrief.a and runs it on the two small TinyStories models in ../shared/models.
#   tools/quality.sh [extra options for tools/quality, e.g. --act-order]
set -e
cd "$(dirname "$0")/.."
make -j2 build/libqbrief.a >/dev/null
mkdir -p build/tools
PKGS="jansson libpcre2-8 sqlite3 yaml-0.1 glib-2.0 cairo"
cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -I. $(pkg-config --cflags $PKGS) -o build/tools/quality \
    tools/quality.c build/libqbrief.a $(pkg-config --libs $PKGS) -lcsv -lhpdf -lm
M=${QB_SHARED:-../shared}/models
CONFIGS="w4g32 w4g32-gptq w4g32-awq w3g32 w3g32-gptq w3g32-awq w8a8 w8a8-smooth fp8-a8 fp8-a8-smooth"
build/tools/quality $M/stories260K/stories260K.bin $M/stories260K/tok512.bin \
    build/tools/calib-stories260K.txt "$@" $CONFIGS
build/tools/quality $M/llama2xs-tinystories/model.bin $M/llama2xs-tinystories/tok512.bin \
    build/tools/calib-llama2xs.txt "$@" $CONFIGS
