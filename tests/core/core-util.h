/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the core tests: making processes of each kind,
 * reading what children report, waiting for pipes to reach end of file. */
#pragma once

#include <afork/afork.h>

G_BEGIN_DECLS

#define TEST_MODULE "afork-test-module"

/* A bound on every wait for a child, generous enough for a loaded machine
 * under sanitizers: reaching it means the child is stuck, not slow. */
#define CORE_WAIT_SECONDS 60

typedef enum
{
  KIND_NEW,        /* afork_process_new () */
  KIND_NEW_EXEC,   /* afork_process_new_exec () */
  KIND_FORK,       /* afork_process_fork () of a new () template */
} ProcessKind;

const char        *kind_name             (ProcessKind kind);
AforkProcess      *make_process          (ProcessKind kind);
void               add_kind_tests        (const char *path,
                                          GTestDataFunc func);

void               make_pipe             (int fds[2]);
int                closed_fd_number      (void);

GAsyncResult      *wait_async            (GAsyncResult **slot);
void               store_result_cb       (GObject      *object,
                                          GAsyncResult *result,
                                          gpointer      user_data);

GSocketConnection *run_ok                (AforkProcess *process,
                                          const char   *function);
GError            *run_error             (AforkProcess *process,
                                          const char   *function);
char              *read_to_eof           (GSocketConnection *connection);
char             **run_lines             (AforkProcess *process,
                                          const char   *function);
char              *read_fd_bytes         (int   fd,
                                          gsize want);
char              *read_fd_to_eof        (int fd);

void               assert_lines_equal    (char       **lines,
                                          const char * const *expected);
char              *sha256_string         (const void *data,
                                          gsize       len);
char              *arg_line              (const char *arg);
GPid               parse_pid_line        (const char *line);
GPid               proc_parent_pid       (GPid pid);

void               core_test_init        (int    *argc,
                                          char ***argv);

G_END_DECLS
