/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-private.h"

#include <string.h>
#include <unistd.h>

#include "afork-child-private.h"

static void
arg_clear (gpointer data)
{
  AforkArg *arg = data;

  g_clear_pointer (&arg->data, g_free);
  if (arg->fd >= 0)
    close (arg->fd);
  arg->fd = -1;
}

void
_afork_child_init (AforkChild *child,
                   int         fd,
                   GPid        owner)
{
  child->fd = fd;
  child->owner = owner;
  child->args = g_array_new (FALSE, TRUE, sizeof (AforkArg));
  g_array_set_clear_func (child->args, arg_clear);
}

void
_afork_child_add_string (AforkChild *child,
                         const void *data,
                         gsize       len)
{
  AforkArg arg = { NULL, len, -1, FALSE };

  arg.data = g_malloc (len + 1);
  if (len > 0)
    memcpy (arg.data, data, len);
  arg.data[len] = '\0';
  g_array_append_val (child->args, arg);
}

void
_afork_child_add_fd (AforkChild *child,
                     int         fd)
{
  AforkArg arg = { NULL, 0, fd, TRUE };

  g_array_append_val (child->args, arg);
}

/* Removes the last argument if it is a descriptor and returns it, or
 * returns -1. This is how a forked server finds its new socket. */
int
_afork_child_pop_last_fd (AforkChild *child)
{
  AforkArg *arg;
  int fd;

  if (child->args->len == 0)
    return -1;

  arg = &g_array_index (child->args, AforkArg, child->args->len - 1);
  if (!arg->is_fd || arg->fd < 0)
    return -1;

  fd = arg->fd;
  arg->fd = -1;
  g_array_set_size (child->args, child->args->len - 1);

  return fd;
}

static AforkArg *
get_arg (AforkChild *child,
         guint       index)
{
  if (index >= child->args->len)
    return NULL;

  return &g_array_index (child->args, AforkArg, index);
}

/**
 * afork_child_get_fd:
 * @child: an #AforkChild
 *
 * Gets the socket connected to the parent, the other end of the
 * [class@Gio.SocketConnection] that [method@Afork.Process.run_finish]
 * returns. It is in blocking mode and close-on-exec, and stays owned by
 * the child; the process exits when the run function returns.
 *
 * In a call function, the socket still carries afork's commands: do not
 * read from it there.
 *
 * Returns: the communication socket
 *
 * Since: 1.0
 */
int
afork_child_get_fd (AforkChild *child)
{
  g_return_val_if_fail (child != NULL, -1);

  return child->fd;
}

/**
 * afork_child_get_n_args:
 * @child: an #AforkChild
 *
 * Gets the number of run arguments pending: the strings and descriptors
 * sent by [method@Afork.Process.send_arg], [method@Afork.Process.send_bytes]
 * and [method@Afork.Process.send_fd], including those sent to a template
 * before it was forked.
 *
 * Returns: the number of arguments
 *
 * Since: 1.0
 */
guint
afork_child_get_n_args (AforkChild *child)
{
  g_return_val_if_fail (child != NULL, 0);

  return child->args->len;
}

/**
 * afork_child_arg_is_fd:
 * @child: an #AforkChild
 * @index: the index of an argument
 *
 * Tells whether the argument at @index is a file descriptor (as opposed
 * to a string).
 *
 * Returns: %TRUE if the argument is a file descriptor
 *
 * Since: 1.0
 */
gboolean
afork_child_arg_is_fd (AforkChild *child,
                       guint       index)
{
  AforkArg *arg;

  g_return_val_if_fail (child != NULL, FALSE);
  g_return_val_if_fail (index < child->args->len, FALSE);

  arg = get_arg (child, index);

  return arg->is_fd;
}

/**
 * afork_child_get_arg:
 * @child: an #AforkChild
 * @index: the index of a string argument
 * @length: (out) (optional): return location for the length in bytes
 *
 * Gets the string argument at @index. Arguments are binary-safe: the
 * returned data may contain NUL bytes, so use @length to know its size;
 * a NUL byte always follows the data for convenience.
 *
 * Returns: (transfer none) (nullable) (array length=length) (element-type guint8):
 *   the argument's bytes, or %NULL if the argument at @index is a file
 *   descriptor
 *
 * Since: 1.0
 */
const char *
afork_child_get_arg (AforkChild *child,
                     guint       index,
                     gsize      *length)
{
  AforkArg *arg;

  g_return_val_if_fail (child != NULL, NULL);
  g_return_val_if_fail (index < child->args->len, NULL);

  arg = get_arg (child, index);
  if (length != NULL)
    *length = arg->is_fd ? 0 : arg->len;

  return arg->data;
}

/**
 * afork_child_peek_fd:
 * @child: an #AforkChild
 * @index: the index of a descriptor argument
 *
 * Gets the file descriptor at @index, which stays owned by @child.
 *
 * Returns: the descriptor, or -1 if the argument is a string or its
 *   descriptor was stolen
 *
 * Since: 1.0
 */
int
afork_child_peek_fd (AforkChild *child,
                     guint       index)
{
  AforkArg *arg;

  g_return_val_if_fail (child != NULL, -1);
  g_return_val_if_fail (index < child->args->len, -1);

  arg = get_arg (child, index);

  return arg->is_fd ? arg->fd : -1;
}

/**
 * afork_child_steal_fd:
 * @child: an #AforkChild
 * @index: the index of a descriptor argument
 *
 * Takes the file descriptor at @index: the caller owns it from now on and
 * must close it. The argument stays in the list, with no descriptor.
 *
 * Descriptors received from the parent are close-on-exec; clear the flag
 * (or dup2() them onto the wanted number) before executing a program that
 * should inherit them.
 *
 * Returns: the descriptor, or -1 if the argument is a string or its
 *   descriptor was already stolen
 *
 * Since: 1.0
 */
int
afork_child_steal_fd (AforkChild *child,
                      guint       index)
{
  AforkArg *arg;
  int fd;

  g_return_val_if_fail (child != NULL, -1);
  g_return_val_if_fail (index < child->args->len, -1);

  arg = get_arg (child, index);
  if (!arg->is_fd)
    return -1;

  fd = arg->fd;
  arg->fd = -1;

  return fd;
}

/**
 * afork_child_clear_args:
 * @child: an #AforkChild
 *
 * Forgets every pending argument, closing descriptors that were not
 * stolen. A call function that consumed the arguments sent so far can use
 * it so that the run function sees only those sent after the call.
 *
 * Since: 1.0
 */
void
afork_child_clear_args (AforkChild *child)
{
  g_return_if_fail (child != NULL);

  g_array_set_size (child->args, 0);
}

/**
 * afork_child_get_owner:
 * @child: an #AforkChild
 *
 * Gets the process id of the program that owns this child: the parent
 * that created it through afork.
 *
 * Returns: the owner's process id, or 0 if unknown
 *
 * Since: 1.0
 */
GPid
afork_child_get_owner (AforkChild *child)
{
  g_return_val_if_fail (child != NULL, 0);

  return child->owner;
}
