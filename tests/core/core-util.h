/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the core tests: running functions of the test module and
 * checking the lines they report. */
#pragma once

#include "afork-test-common.h"

G_BEGIN_DECLS

#define TEST_MODULE "afork-test-module"

int                closed_fd_number      (void);

GSocketConnection *run_ok                (AforkProcess *process,
                                          const char   *function);
GError            *run_error             (AforkProcess *process,
                                          const char   *function);
char             **run_lines             (AforkProcess *process,
                                          const char   *function);

void               assert_lines_equal    (char       **lines,
                                          const char * const *expected);
char              *sha256_string         (const void *data,
                                          gsize       len);
char              *arg_line              (const char *arg);

G_END_DECLS
