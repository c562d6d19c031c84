/* analyze_sens: the sensitivity scan a brief shows (collector/store/store_sens.h): the latest
 * scan of the run's model, one of the run's own when it has one, read into the analysis
 * (a->sens) for the heatmap of damage per layer and matrix and the sentences naming the units
 * that matter. */
#ifndef QB_ANALYZE_SENS_H
#define QB_ANALYZE_SENS_H

#include <stdint.h>

struct qb_an_sens_unit {
    char *unit;      /* "L3.down", "L3", "output", "embed" */
    char *tensor;    /* "q" .. "down", "layer", "output", "embed" */
    int64_t layer;   /* -1 for output and embed */
    double kl;       /* mean KL from the baseline with this unit alone quantized, nats */
    double accuracy; /* points on the slice with this unit alone quantized; NAN: none */
    int64_t extra_bytes;
};

struct qb_an_sens {
    char *config, *baseline, *keep, *granularity, *source, *slice; /* slice NULL: calib */
    int64_t n_layers;              /* 1 + the highest layer a unit names */
    struct qb_an_sens_unit *units; /* by damage, largest first */
    int64_t n_units, n_positions, topk;
    double base_accuracy, config_accuracy, config_kl; /* NAN: not measured */
    double topk_summed_kl, topk_measured_kl, seconds;
    char **candidates; /* the mixed configs it proposed */
    int64_t n_candidates;
};

struct qb_store;
/* Reads the scan into *out (NULL when the store has none for the model). */
int qb_an_sens_load(struct qb_store *s, const char *model_sha256, const char *run_name,
                    struct qb_an_sens **out);
void qb_an_sens_free(struct qb_an_sens *s);

#endif
