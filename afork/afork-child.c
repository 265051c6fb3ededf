/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-child-private.h"
#include "afork-ring-private.h"
#include "afork-wire-private.h"

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

/* Pool workers ----------------------------------------------------------- */

/**
 * afork_child_get_call_fd:
 * @child: an #AforkChild
 * @handle: a handle (an `h` value) of the call's parameters
 *
 * In a pool function ([callback@Afork.PoolFunc]), gets the descriptor
 * that @handle of the parameters designates: the index in the
 * #GUnixFDList given to [method@Afork.Pool.call_with_fds_async]. It stays
 * owned by @child and is closed after the call; see
 * [method@Afork.Child.steal_call_fd] to keep it.
 *
 * Returns: the descriptor, or -1 if @handle is out of range, outside a
 *   call, or was stolen
 *
 * Since: 1.0
 */
int
afork_child_get_call_fd (AforkChild *child,
                         gint32      handle)
{
  g_return_val_if_fail (child != NULL, -1);

  if (child->call_fds == NULL || handle < 0 || (guint) handle >= child->call_fds->len)
    return -1;

  return g_array_index (child->call_fds, int, handle);
}

/**
 * afork_child_steal_call_fd:
 * @child: an #AforkChild
 * @handle: a handle (an `h` value) of the call's parameters
 *
 * Like [method@Afork.Child.get_call_fd], but the caller owns the
 * descriptor from now on and must close it.
 *
 * Returns: the descriptor, or -1 if @handle is out of range, outside a
 *   call, or was already stolen
 *
 * Since: 1.0
 */
int
afork_child_steal_call_fd (AforkChild *child,
                           gint32      handle)
{
  int fd;

  g_return_val_if_fail (child != NULL, -1);

  fd = afork_child_get_call_fd (child, handle);
  if (fd >= 0)
    g_array_index (child->call_fds, int, handle) = -1;

  return fd;
}

/**
 * afork_child_add_reply_fd:
 * @child: an #AforkChild
 * @fd: a descriptor to send with the reply
 *
 * In a pool function, adds a copy of @fd (made with `dup()`; @fd stays the
 * caller's) to the descriptors of the reply. Put the returned handle in an
 * `h` value of the reply: the caller finds the descriptor at that index of
 * the #GUnixFDList that [method@Afork.Pool.call_with_fds_finish] returns.
 *
 * Returns: the handle, or -1 if @fd cannot be duplicated or this is not a
 *   pool worker's call
 *
 * Since: 1.0
 */
gint32
afork_child_add_reply_fd (AforkChild *child,
                          int         fd)
{
  int copy;

  g_return_val_if_fail (child != NULL, -1);
  g_return_val_if_fail (fd >= 0, -1);

  if (child->reply_fds == NULL)
    return -1;

  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    return -1;

  g_array_append_val (child->reply_fds, copy);

  return (gint32) child->reply_fds->len - 1;
}

/**
 * afork_child_emit_event:
 * @child: an #AforkChild
 * @name: the name of the event
 * @value: (nullable): the value of the event; a floating reference is sunk
 *
 * In a pool function, sends an event to the parent: the pool emits
 * [signal@Afork.Pool::event] with @name and @value in the main context of
 * the call's caller, before the call's reply. Events cannot carry
 * descriptors; %NULL sends an empty tuple. Call it from the thread that
 * runs the pool function, not from threads it starts.
 *
 * Since: 1.0
 */
void
afork_child_emit_event (AforkChild *child,
                        const char *name,
                        GVariant   *value)
{
  g_autoptr(GByteArray) local = g_byte_array_new ();
  g_autoptr(GVariant) owned = NULL;
  GByteArray *frame;
  gsize pos = 0;

  g_return_if_fail (child != NULL);
  g_return_if_fail (name != NULL && g_utf8_validate (name, -1, NULL));

  owned = value != NULL ? g_variant_ref_sink (value) : g_variant_ref_sink (g_variant_new ("()"));

  if (child->reply_fds == NULL)
    {
      g_critical ("afork_child_emit_event() called outside a pool call");
      return;
    }

  /* After the replies of the calls before, which the loop may hold. */
  frame = child->pool_out != NULL ? child->pool_out : local;
  if (!_afork_wire_put_pool_event (frame, name, owned))
    {
      g_critical ("afork_child_emit_event(): the value is too large");
      return;
    }

  /* The parent being gone, the call loop sees it next. */
  if (child->pool_ring != NULL)
    {
      _afork_ring_write (child->pool_ring, child->fd, frame->data, frame->len);
      g_byte_array_set_size (frame, 0);
      return;
    }

  while (pos < frame->len)
    {
      gssize res = send (child->fd, frame->data + pos, frame->len - pos, MSG_NOSIGNAL);

      if (res < 0 && errno == EINTR)
        continue;
      if (res <= 0)
        break;  /* the parent is gone: the call loop sees it next */
      pos += res;
    }
  g_byte_array_set_size (frame, 0);
}
