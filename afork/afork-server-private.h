/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-private.h"
#include "afork-child.h"

#include <sys/types.h>

#include <gmodule.h>

#include "afork-child-private.h"
#include "afork-wire-private.h"

G_BEGIN_DECLS

/* A server: the command loop of afork-server, and of the early and
 * fork-self templates, which are forks of the calling program.
 *
 *   afork-server.c        the command loop
 *   afork-server-spare.c  forking the next child ahead, while idle
 *   afork-server-exec.c   the exec command
 *   afork-server-main.c   afork-server's main() (not in the library)
 */

typedef struct
{
  pid_t pid;
  int   status_fd;
} AforkServerChild;

typedef struct
{
  int         sock;
  GByteArray *in;        /* received bytes not yet decoded */
  GArray     *fds;       /* received descriptors not yet claimed by `h` */
  AforkChild  child;     /* pending run arguments */
  GPtrArray  *modules;   /* GModule *, in load order */
  GModule    *program;   /* the server program itself, opened by the template */
  GError     *error;     /* the first failed `m` or `c` */
  int         next_status_fd;  /* from `w`, for the next fork */
  /* The children this server forked and reaps, each with the descriptor
   * its wait status is written to (-1: none), in one array: a template
   * writes to it between two forks, and each page it writes then is
   * copied, the child sharing it. NULL: none yet. */
  AforkServerChild *children;
  guint       n_children;
  guint       children_size;
  int         owner_pidfd;     /* readable once the owner has exited */
  /* A child forked ahead of the next fork request, waiting on spare_sock
   * for the socket of the process it is to become. It is valid while
   * nothing a fork inherits changed since it was forked: no `a`, `m` or
   * `c` (generation) and no descriptor added (spare_n_args). */
  pid_t       spare_pid;
  int         spare_sock;
  guint       generation;
  guint       spare_generation;
  guint       spare_n_args;
} AforkServer;

G_GNUC_NORETURN
void      _afork_server_serve              (int                    fd,
                                            GPid                   owner);
void      _afork_server_set_title          (const char            *program,
                                            GPid                   owner,
                                            const char            *role);
/* The memory of argv that _afork_server_set_title() may overwrite. */
void      _afork_server_set_title_area     (char                  *area,
                                            gsize                  len);

/* The command loop (afork-server.c), for the other server files. */
G_GNUC_NORETURN
void      _afork_server_die                (AforkServer           *server,
                                            const char            *message);
gboolean  _afork_server_is_template        (AforkServer           *server);
void      _afork_server_add_child          (AforkServer           *server,
                                            pid_t                  pid);
void      _afork_server_remove_child       (AforkServer           *server,
                                            pid_t                  pid);
void      _afork_server_reset_signals      (void);
void      _afork_server_restore_nofile     (AforkServer           *server);
void      _afork_server_forget_loop_state  (AforkServer           *server);
GArray   *_afork_server_parse_strings      (AforkServer           *server,
                                            const guint8          *payload,
                                            guint32                len);
char     *_afork_server_wire_cstring       (const AforkWireString *s,
                                            GError               **error);
void      _afork_server_acknowledge_or_exit (AforkServer          *server,
                                            const GError          *error);

/* Forking ahead (afork-server-spare.c). */
void      _afork_server_spare_forget       (AforkServer           *server);
void      _afork_server_spare_drop         (AforkServer           *server,
                                            gboolean               reap);
gboolean  _afork_server_spare_wanted       (AforkServer           *server);
gboolean  _afork_server_spare_start        (AforkServer           *server);
pid_t     _afork_server_spare_hand_over    (AforkServer           *server,
                                            int                    fd);

/* The exec command (afork-server-exec.c). */
G_GNUC_NORETURN
void      _afork_server_handle_exec        (AforkServer           *server,
                                            const guint8          *payload,
                                            guint32                len);

G_END_DECLS
