/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared helpers of the reliability tests: process kinds, /proc
 * inspection, a main-loop watchdog. Everything works on real processes. */

#include "afork-test-common.h"

G_BEGIN_DECLS

/* The main loop must never stall this long while a test waits on a child;
 * a generous bound, to catch a blocked loop, not to measure speed. No
 * single wait may take longer than AFORK_TEST_WAIT_SECONDS. */
#define REL_STALL_LIMIT_S 10

/* Processes per soak test in CI; the sanitizers make each one slower. */
#if defined(__SANITIZE_ADDRESS__)
# define REL_CI_COUNT 1000
#else
# define REL_CI_COUNT 2000
#endif

void         rel_init                  (int           *argc,
                                        char        ***argv);
void         rel_assert_no_sigpipe     (void);
void         rel_unblock_sigpipe       (void);
guint        rel_env_uint              (const char    *name,
                                        guint          default_value);
char        *rel_module_path           (const char    *name);

/* Kinds of processes the library can make. A kind that needs a template
 * (fork) keeps it in @data. */
typedef struct _RelKind RelKind;
struct _RelKind
{
  const char    *name;
  AforkProcess *(*make) (RelKind *kind, GError **error);
  gpointer       data;
};

extern RelKind rel_kinds[];
extern const guint rel_n_kinds;
void         rel_kinds_reset           (void);
void         rel_add_kind_tests        (const char    *path,
                                        GTestDataFunc  func);

AforkProcess *rel_make                 (RelKind       *kind);
GPid          rel_report_pid           (AforkProcess  *process);
GPid          rel_default_template_pid (void);

/* /proc (a process's state, parent and group: afork_test_proc_stat ()) */
char        *rel_proc_cmdline          (GPid           pid);
GArray      *rel_proc_list             (void);
GArray      *rel_zombie_children       (GPid           parent);
guint        rel_count_fds             (GPid           pid);
guint        rel_settled_fd_count      (guint          expected);
gboolean     rel_proc_has_fd_target    (GPid           pid,
                                        const char    *target);
gsize        rel_rss_kib               (void);

/* Connections */
char        *rel_read_line             (GSocketConnection *connection,
                                        GError           **error);
GPid         rel_read_pid_line         (GSocketConnection *connection);

/* Main loop */
typedef struct _RelWatchdog RelWatchdog;
RelWatchdog *rel_watchdog_new          (GMainContext  *context);
guint        rel_watchdog_beats        (RelWatchdog   *watchdog);
void         rel_watchdog_free         (RelWatchdog   *watchdog);
void         rel_iterate_until         (GMainContext  *context,
                                        gboolean      *done,
                                        const char    *what);
void         rel_iterate_for           (GMainContext  *context,
                                        guint          msec);
GSocketConnection *rel_run_async_wait  (AforkProcess  *process,
                                        const char    *function,
                                        GError       **error);
void         rel_assert_runs           (AforkProcess  *process);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelWatchdog, rel_watchdog_free)

G_END_DECLS
