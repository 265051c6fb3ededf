/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib-object.h>

#include "afork-process.h"
#include "afork-version-macros.h"

G_BEGIN_DECLS

#define AFORK_TYPE_SANDBOX (afork_sandbox_get_type ())

AFORK_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (AforkSandbox, afork_sandbox, AFORK, SANDBOX, GObject)

AFORK_AVAILABLE_IN_1_0
AforkSandbox *afork_sandbox_new                  (void) G_GNUC_WARN_UNUSED_RESULT;

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_allow_read           (AforkSandbox *self,
                                                  const char   *path);
AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_allow_write          (AforkSandbox *self,
                                                  const char   *path);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_set_network          (AforkSandbox *self,
                                                  gboolean      allowed);
AFORK_AVAILABLE_IN_1_0
gboolean      afork_sandbox_get_network          (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_set_exec             (AforkSandbox *self,
                                                  gboolean      allowed);
AFORK_AVAILABLE_IN_1_0
gboolean      afork_sandbox_get_exec             (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_set_memory_limit     (AforkSandbox *self,
                                                  guint64       bytes);
AFORK_AVAILABLE_IN_1_0
guint64       afork_sandbox_get_memory_limit     (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_set_cpu_limit        (AforkSandbox *self,
                                                  guint         seconds);
AFORK_AVAILABLE_IN_1_0
guint         afork_sandbox_get_cpu_limit        (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_set_best_effort      (AforkSandbox *self,
                                                  gboolean      best_effort);
AFORK_AVAILABLE_IN_1_0
gboolean      afork_sandbox_get_best_effort      (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
void          afork_sandbox_require_landlock_abi (AforkSandbox *self,
                                                  guint         abi);
AFORK_AVAILABLE_IN_1_0
guint         afork_sandbox_get_landlock_abi     (AforkSandbox *self);

AFORK_AVAILABLE_IN_1_0
guint         afork_sandbox_get_kernel_landlock_abi (void);

AFORK_AVAILABLE_IN_1_0
AforkProcess *afork_process_sandbox              (AforkProcess *self,
                                                  AforkSandbox *sandbox);

G_END_DECLS
