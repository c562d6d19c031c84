/* progress: how far a long phase has come (quantizing a model, calibrating it, timing its
 * latency), told from whatever layer does the work to one listener that the top layer
 * installs (qbrief run prints a line with an ETA from it). Without a listener a report costs
 * one atomic load.
 *
 *     qb_progress_set(show, &state);                  // the listener, process-wide
 *     for (i = 0; i < n; i++) {
 *         work(i);
 *         qb_progress("quantizing", i + 1, n);        // i + 1 of n units done
 *     }
 *     qb_progress_set(NULL, NULL);                    // none again
 *
 * A phase starts over when its name changes or its count goes down. The listener is called
 * under a lock, from the thread that reports (reports come from serial code, not from inside
 * OpenMP loops); it decides itself how often to print. */
#ifndef QB_PROGRESS_H
#define QB_PROGRESS_H

#include <stdint.h>

typedef void (*qb_progress_fn)(void *ctx, const char *phase, int64_t done, int64_t total);

/* Installs (or, fn NULL, removes) the listener. */
void qb_progress_set(qb_progress_fn fn, void *ctx);

/* done of total units of phase are done (0 <= done <= total). */
void qb_progress(const char *phase, int64_t done, int64_t total);

#endif
