/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-private.h"

G_BEGIN_DECLS

AforkProcess *_afork_process_new_for_fd (int           fd,
                                         GSubprocess  *subprocess,
                                         GPid          pid,
                                         int           status_fd);

void          _afork_process_queue_frame (AforkProcess *self,
                                         guint8        command,
                                         const guint8 *payload,
                                         gsize         len);

G_END_DECLS
