/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The functions afork-pool-bench calls: built against afork's headers
 * only, as the documentation recommends for worker modules. */
#include <afork/afork.h>

#define EXPORT __attribute__((visibility("default")))

/* Returns its parameters: the smallest useful call. */
EXPORT GVariant *bench_echo (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
bench_echo (G_GNUC_UNUSED AforkChild *child,
            GVariant                 *parameters,
            G_GNUC_UNUSED GError    **error)
{
  return g_variant_ref (parameters);
}

/* A run function that returns at once: the process exits. */
EXPORT void bench_run_nothing (AforkChild *child);
void
bench_run_nothing (G_GNUC_UNUSED AforkChild *child)
{
}
