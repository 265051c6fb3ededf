/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <gio/gio.h>

#include "afork-exec-options.h"
#include "afork-version-macros.h"

G_BEGIN_DECLS

#define AFORK_TYPE_PROCESS (afork_process_get_type ())

AFORK_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (AforkProcess, afork_process, AFORK, PROCESS, GObject)

AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_new          (GError             **error) G_GNUC_WARN_UNUSED_RESULT;
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_new_exec     (GError             **error) G_GNUC_WARN_UNUSED_RESULT;
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_fork         (AforkProcess        *self) G_GNUC_WARN_UNUSED_RESULT;
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_require      (AforkProcess        *self,
                                               const char          *module);
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_call         (AforkProcess        *self,
                                               const char          *function,
                                               const char * const  *args);
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_send_arg     (AforkProcess        *self,
                                               const char          *arg);
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_send_bytes   (AforkProcess        *self,
                                               GBytes              *bytes);
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_send_fd      (AforkProcess        *self,
                                               int                  fd);
AFORK_AVAILABLE_IN_1_0
void               afork_process_run_async    (AforkProcess        *self,
                                               const char          *function,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_run_finish   (AforkProcess        *self,
                                               GAsyncResult        *result,
                                               GError             **error);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_run          (AforkProcess        *self,
                                               const char          *function,
                                               GCancellable        *cancellable,
                                               GError             **error);
AFORK_AVAILABLE_IN_1_0
GPid               afork_process_get_pid      (AforkProcess        *self);

AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_fork_self    (GError             **error) G_GNUC_WARN_UNUSED_RESULT;

AFORK_AVAILABLE_IN_1_0
void               afork_process_exec_async   (AforkProcess        *self,
                                               const char * const  *argv,
                                               AforkExecOptions    *options,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_exec_finish  (AforkProcess        *self,
                                               GAsyncResult        *result,
                                               GError             **error);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_exec         (AforkProcess        *self,
                                               const char * const  *argv,
                                               AforkExecOptions    *options,
                                               GCancellable        *cancellable,
                                               GError             **error);

AFORK_AVAILABLE_IN_1_0
void               afork_process_wait_async   (AforkProcess        *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
AFORK_AVAILABLE_IN_1_0
gboolean           afork_process_wait_finish  (AforkProcess        *self,
                                               GAsyncResult        *result,
                                               GError             **error);
AFORK_AVAILABLE_IN_1_0
gboolean           afork_process_wait         (AforkProcess        *self,
                                               GCancellable        *cancellable,
                                               GError             **error);
AFORK_AVAILABLE_IN_1_0
int                afork_process_get_status   (AforkProcess        *self);
AFORK_AVAILABLE_IN_1_0
gboolean           afork_process_get_if_exited (AforkProcess       *self);
AFORK_AVAILABLE_IN_1_0
int                afork_process_get_exit_status (AforkProcess     *self);
AFORK_AVAILABLE_IN_1_0
gboolean           afork_process_get_if_signaled (AforkProcess     *self);
AFORK_AVAILABLE_IN_1_0
int                afork_process_get_term_sig (AforkProcess        *self);

AFORK_AVAILABLE_IN_1_0
void               afork_process_hand_over_async         (AforkProcess        *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_hand_over_finish        (AforkProcess        *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);
AFORK_AVAILABLE_IN_1_0
GSocketConnection *afork_process_hand_over               (AforkProcess        *self,
                                                          GCancellable        *cancellable,
                                                          GError             **error);
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_new_from_fd             (int                  fd,
                                                          GError             **error) G_GNUC_WARN_UNUSED_RESULT;
AFORK_AVAILABLE_IN_1_0
AforkProcess      *afork_process_new_from_connection     (GSocketConnection   *connection,
                                                          GError             **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
