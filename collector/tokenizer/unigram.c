/* tok_unigram: SentencePiece's Unigram model (a tokenizer.model with model_type UNIGRAM, read
 * by spm_model.c). Must agree with sentencepiece's unigram_model.cc EncodeOptimized: the
 * text (spaces as U+2581, the dummy prefix in front, extra spaces removed when the model
 * asks) is cut into pieces along the path of highest total score through the lattice of
 * every vocabulary piece that matches at each character boundary. Normal pieces score their
 * log-probability; user-defined ones length x max score - 0.1; unused, control and byte
 * pieces never match text; a character no piece starts with is <unk> scored min score - 10.
 * Ties keep the first candidate found (shorter pieces first, as the trie walks them). <unk>
 * runs become byte pieces when the model has them (byte_fallback), as
 * SentencePieceProcessor does. */
#include "collector/tokenizer/tokenizer_int.h"
#include "kernels/base/err.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define UNK_PENALTY 10.0f

struct node {
    int32_t id;  /* piece ending here on the best path; -1: none yet */
    float score; /* the best path's total up to here */
    size_t from; /* where that piece starts */
};

/* text -> the normalized buffer: spaces as U+2581, runs of spaces collapsed and the ends
 * stripped when remove_ws, the dummy prefix in front when prefix and anything is left */
static char *normalize(const char *text, size_t len, int prefix, int remove_ws, size_t *out_len)
{
    char *buf = malloc(3 * len + TOK_SPACE_LEN + 1);
    size_t n = 0, i = 0, end = len;

    if (!buf)
        return NULL;
    if (remove_ws) {
        while (i < len && text[i] == ' ')
            i++;
        while (end > i && text[end - 1] == ' ')
            end--;
    }
    if (prefix && i < end) {
        memcpy(buf, TOK_SPACE, TOK_SPACE_LEN);
        n = TOK_SPACE_LEN;
    }
    for (; i < end; i++) {
        if (text[i] != ' ') {
            buf[n++] = text[i];
            continue;
        }
        if (remove_ws && i > 0 && text[i - 1] == ' ')
            continue;
        memcpy(buf + n, TOK_SPACE, TOK_SPACE_LEN);
        n += TOK_SPACE_LEN;
    }
    *out_len = n;
    return buf;
}

static size_t char_len(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    size_t g = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return g < left ? g : left;
}

/* the id of piece s[0..len) if it may come from text, else -1; *user when user-defined */
static int32_t matchable(const struct qb_tokenizer *t, const char *s, size_t len, int *user)
{
    int32_t id = tok_lookup(t, s, len);
    if (id < 0 || id >= t->n_model)
        return -1;
    *user = t->types[id] == QB_TT_USER_DEFINED;
    return t->types[id] == QB_TT_NORMAL || *user ? id : -1;
}

int tok_unigram_encode(const struct qb_tokenizer *t, const char *text, size_t len, int prefix,
                       struct tok_ids *out)
{
    /* as unigram_model.cc initialises them: max from FLT_MIN, so with only negative scores a
     * user-defined piece scores length x FLT_MIN - 0.1 */
    float min_score = FLT_MAX, max_score = FLT_MIN;
    struct node *best = NULL;
    int32_t *path = NULL;
    size_t n = 0, n_path = 0;
    char *buf;
    int rc = 0;

    if (len == 0)
        return 0;
    if (!(buf = normalize(text, len, prefix, t->remove_ws, &n)) ||
        !(best = malloc((n + 1) * sizeof *best)) || !(path = malloc((n + 1) * sizeof *path))) {
        rc = qb_err(QB_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
        goto out;
    }
    for (int64_t id = 0; id < t->n_model; id++)
        if (t->types[id] == QB_TT_NORMAL) {
            min_score = t->scores[id] < min_score ? t->scores[id] : min_score;
            max_score = t->scores[id] > max_score ? t->scores[id] : max_score;
        }
    for (size_t i = 0; i <= n; i++)
        best[i] = (struct node){-1, 0, 0};
    for (size_t at = 0; at < n;) {
        const float here = best[at].score;
        const size_t mb = char_len(buf + at, n - at);
        int single = 0;
        for (size_t l = 1; l <= t->max_piece_len && at + l <= n; l++) {
            int user = 0;
            int32_t id = matchable(t, buf + at, l, &user);
            float sc;
            if (id < 0)
                continue;
            sc = (user ? (float)l * max_score - 0.1f : t->scores[id]) + here;
            if (best[at + l].id < 0 || sc > best[at + l].score)
                best[at + l] = (struct node){id, sc, at};
            single |= l == mb;
        }
        if (!single &&
            (best[at + mb].id < 0 || min_score - UNK_PENALTY + here > best[at + mb].score))
            best[at + mb] =
                (struct node){t->unk >= 0 ? t->unk : INT32_MAX, min_score - UNK_PENALTY + here, at};
        at += mb;
    }
    /* back from the end; then forward, <unk> as byte pieces where the model has them */
    for (size_t at = n; at > 0; at = best[at].from)
        path[n_path++] = (int32_t)at;
    while (n_path-- > 0) {
        const size_t end = (size_t)path[n_path], from = best[end].from;
        int32_t id = best[end].id;
        int bytes = id == INT32_MAX || id == t->unk;
        for (size_t k = from; bytes && k < end; k++)
            bytes = t->byte_id[(unsigned char)buf[k]] >= 0;
        if (bytes) {
            for (size_t k = from; k < end && rc == 0; k++)
                rc = tok_ids_push(out, t->byte_id[(unsigned char)buf[k]]);
        } else if (id != INT32_MAX) {
            rc = tok_ids_push(out, id);
        }
        if (rc < 0)
            goto out;
    }
out:
    free(path);
    free(best);
    free(buf);
    return rc;
}
