/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the tests of templates, exec and wait. */
#pragma once

#include <afork/afork.h>

G_BEGIN_DECLS

/* A bound on every wait: reaching it means a child is stuck, not slow. */
#define TEMPLATES_WAIT_SECONDS 60

char  *templates_read_fd_to_eof      (int                 fd);
char  *templates_read_connection     (GSocketConnection  *connection);
void   templates_assert_fd_eof_soon  (int                 fd);

G_END_DECLS
