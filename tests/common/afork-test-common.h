/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the areas of the test suite: making processes of each
 * kind, pipes, reading to end of file, waiting on the main loop and on
 * processes. Every wait is bounded: reaching the bound fails the test. */
#pragma once

#include <afork/afork.h>

#include "afork-test-io.h"

G_BEGIN_DECLS

/* A bound on every wait for a child, generous enough for a loaded machine
 * under sanitizers: reaching it means the child is stuck, not slow. */
#define AFORK_TEST_WAIT_SECONDS 60

typedef enum
{
  AFORK_TEST_KIND_NEW,        /* afork_process_new () */
  AFORK_TEST_KIND_NEW_EXEC,   /* afork_process_new_exec () */
  AFORK_TEST_KIND_FORK,       /* afork_process_fork () of a new () template */
} AforkTestKind;

void               afork_test_init             (int            *argc,
                                                char         ***argv);

const char        *afork_test_kind_name        (AforkTestKind   kind);
AforkProcess      *afork_test_make_process     (AforkTestKind   kind);
void               afork_test_add_kind_tests   (const char     *path,
                                                GTestDataFunc   func);

void               afork_test_pipe             (int             fds[2]);
char              *afork_test_read_fd_bytes    (int             fd,
                                                gsize           want);
char              *afork_test_read_fd_to_eof   (int             fd);
char              *afork_test_read_connection  (GSocketConnection *connection);

void               afork_test_iterate_until    (GMainContext   *context,
                                                const gboolean *done,
                                                const char     *what);
void               afork_test_store_result_cb  (GObject        *object,
                                                GAsyncResult   *result,
                                                gpointer        user_data);
GAsyncResult      *afork_test_wait_result      (GAsyncResult  **slot);
GSocketConnection *afork_test_run              (AforkProcess   *process,
                                                const char     *function,
                                                GError        **error);

GPid               afork_test_parse_pid_line   (const char     *line);
gboolean           afork_test_proc_stat        (GPid            pid,
                                                char           *state,
                                                GPid           *ppid,
                                                GPid           *pgrp);
GPid               afork_test_proc_parent      (GPid            pid);
gboolean           afork_test_proc_gone        (GPid            pid);
gboolean           afork_test_wait_gone        (GPid            pid,
                                                guint           timeout_s);

G_END_DECLS
