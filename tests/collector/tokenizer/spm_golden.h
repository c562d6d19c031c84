/* spm_golden: 8 multilingual sentences and the ids Debian's python3-sentencepiece 0.1.97 gives
 * for them with the Llama 2 tokenizer.model (../shared/models/llama2-tokenizer), no BOS:
 *     /usr/bin/python3 -c 'import sentencepiece as s; print(s.SentencePieceProcessor(
 *         model_file="tokenizer.model").encode("Hello world"))'
 * Shared by test_spm_model.c (the file) and tests/collector/model/test_spm_dir.c (an HF
 * directory with only tokenizer.model). */
#ifndef QB_TEST_SPM_GOLDEN_H
#define QB_TEST_SPM_GOLDEN_H

#include <stdint.h>

static const struct {
    const char *text;
    int n;
    int32_t ids[32];
} spm_golden[] = {
    {"Hello world", 2, {15043, 3186}},
    {"The quick brown fox jumps over the lazy dog.",
     12,
     {450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889}},
    {"Bonjour, comment \xc3\xa7"
     "a va ? Tr\xc3\xa8s bien, merci.",
     16,
     {8396, 29926, 473, 29892, 3440, 29871, 4277, 2947, 1577, 1605, 2093, 6079, 29892, 2778, 455,
      29889}},
    {"Gr\xc3\xbc\xc3\x9f"
     "e aus M\xc3\xbcnchen: Stra\xc3\x9f"
     "e und Fu\xc3\x9f"
     "ball",
     9,
     {1632, 29993, 5831, 1770, 10864, 29901, 22667, 563, 13739}},
    {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xba\xd0\xb0\xd0\xba "
     "\xd0\xb4\xd0\xb5\xd0\xbb\xd0\xb0?",
     6,
     {7203, 7616, 29892, 5413, 24280, 29973}},
    {"\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe4\xb8\x96\xe7\x95\x8c\xe3"
     "\x80\x81\xe4\xbb\x8a\xe6\x97\xa5\xe3\x81\xaf\xe3\x81\x84\xe3\x81\x84\xe5\xa4\xa9\xe6\xb0"
     "\x97\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82",
     19,
     {29871, 30589, 30389, 30353, 30644, 30449, 30793, 30967, 30330, 31482, 30325, 30449, 30298,
      30298, 30408, 31648, 30499, 30427, 30267}},
    {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81\xe6\x88\x91\xe4"
     "\xbb\xac\xe4\xbb\x8a\xe5\xa4\xa9\xe5\x8e\xbb\xe5\x85\xac\xe5\x9b\xad\xe3\x80\x82",
     17,
     {29871, 30919, 31076, 30214, 30793, 30967, 30584, 30672, 31381, 31482, 30408, 31475, 30539,
      232, 158, 176, 30267}},
    {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84"
     "\xd9\x85 \xf0\x9f\x99\x82 emoji & tabs\tand  two spaces",
     27,
     {29871, 30159, 30156, 30240, 30177, 30112, 29871, 30177, 19233,
      30218, 19233, 30159, 29871, 243,   162,   156,   133,   953,
      29877, 2397,  669,   18859, 12,    392,   29871, 1023,  8162}},
};

#define SPM_N_GOLDEN (int)(sizeof spm_golden / sizeof spm_golden[0])

#endif
