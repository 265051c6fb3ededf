/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "afork-process.h"
#include "afork-version-macros.h"

G_BEGIN_DECLS

#define AFORK_TYPE_POOL (afork_pool_get_type ())

AFORK_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (AforkPool, afork_pool, AFORK, POOL, GObject)

AFORK_AVAILABLE_IN_1_0
AforkPool *afork_pool_new                   (AforkProcess         *template_process) G_GNUC_WARN_UNUSED_RESULT;

AFORK_AVAILABLE_IN_1_0
void       afork_pool_call_async            (AforkPool            *self,
                                             const char           *function,
                                             GVariant             *parameters,
                                             GCancellable         *cancellable,
                                             GAsyncReadyCallback   callback,
                                             gpointer              user_data);
AFORK_AVAILABLE_IN_1_0
GVariant  *afork_pool_call_finish           (AforkPool            *self,
                                             GAsyncResult         *result,
                                             GError              **error);
AFORK_AVAILABLE_IN_1_0
GVariant  *afork_pool_call                  (AforkPool            *self,
                                             const char           *function,
                                             GVariant             *parameters,
                                             GCancellable         *cancellable,
                                             GError              **error);

AFORK_AVAILABLE_IN_1_0
void       afork_pool_call_with_fds_async   (AforkPool            *self,
                                             const char           *function,
                                             GVariant             *parameters,
                                             GUnixFDList          *fd_list,
                                             GCancellable         *cancellable,
                                             GAsyncReadyCallback   callback,
                                             gpointer              user_data);
AFORK_AVAILABLE_IN_1_0
GVariant  *afork_pool_call_with_fds_finish  (AforkPool            *self,
                                             GUnixFDList         **out_fd_list,
                                             GAsyncResult         *result,
                                             GError              **error);
AFORK_AVAILABLE_IN_1_0
GVariant  *afork_pool_call_with_fds         (AforkPool            *self,
                                             const char           *function,
                                             GVariant             *parameters,
                                             GUnixFDList          *fd_list,
                                             GUnixFDList         **out_fd_list,
                                             GCancellable         *cancellable,
                                             GError              **error);

AFORK_AVAILABLE_IN_1_0
void       afork_pool_close_async           (AforkPool            *self,
                                             GCancellable         *cancellable,
                                             GAsyncReadyCallback   callback,
                                             gpointer              user_data);
AFORK_AVAILABLE_IN_1_0
gboolean   afork_pool_close_finish          (AforkPool            *self,
                                             GAsyncResult         *result,
                                             GError              **error);

AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_n_workers         (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_n_queued          (AforkPool            *self);

AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_max_workers       (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_max_workers       (AforkPool            *self,
                                             guint                 max_workers);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_min_workers       (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_min_workers       (AforkPool            *self,
                                             guint                 min_workers);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_load              (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_load              (AforkPool            *self,
                                             guint                 load);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_idle_timeout      (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_idle_timeout      (AforkPool            *self,
                                             guint                 idle_timeout);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_max_calls_per_worker (AforkPool         *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_max_calls_per_worker (AforkPool         *self,
                                                guint              max_calls);
AFORK_AVAILABLE_IN_1_0
guint      afork_pool_get_call_timeout      (AforkPool            *self);
AFORK_AVAILABLE_IN_1_0
void       afork_pool_set_call_timeout      (AforkPool            *self,
                                             guint                 call_timeout);

G_END_DECLS
