/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The C function the Python benchmark compares its Python function with:
 * a pool function that returns its one parameter, as
 * python_bench.echo (value) does. */
#include <afork/afork.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT GVariant *bench_python_echo (AforkChild *child,
                                    GVariant   *parameters,
                                    GError    **error);

GVariant *
bench_python_echo (G_GNUC_UNUSED AforkChild *child,
                   GVariant                 *parameters,
                   G_GNUC_UNUSED GError    **error)
{
  return g_variant_get_child_value (parameters, 0);
}
