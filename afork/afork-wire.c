/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-private.h"

#include <string.h>

#include "afork-wire-private.h"

void
_afork_wire_encode_u32 (guint8  *out,
                        guint32  value)
{
  out[0] = value & 0xff;
  out[1] = (value >> 8) & 0xff;
  out[2] = (value >> 16) & 0xff;
  out[3] = (value >> 24) & 0xff;
}

void
_afork_wire_put_u32 (GByteArray *out,
                     guint32     value)
{
  guint8 le[4];

  _afork_wire_encode_u32 (le, value);
  g_byte_array_append (out, le, sizeof le);
}

guint32
_afork_wire_read_u32 (const guint8 *data)
{
  return (guint32) data[0] | ((guint32) data[1] << 8) |
         ((guint32) data[2] << 16) | ((guint32) data[3] << 24);
}

/* Starts a frame whose length is patched by _afork_wire_end(). Returns the
 * offset of the frame in @out. */
gsize
_afork_wire_begin (GByteArray *out,
                   guint8      command)
{
  gsize start = out->len;

  g_byte_array_append (out, &command, 1);
  _afork_wire_put_u32 (out, 0);

  return start;
}

/* The caller checked @len against AFORK_WIRE_MAX_PAYLOAD first: a frame
 * never goes out with a string missing. */
void
_afork_wire_put_string (GByteArray *out,
                        const void *data,
                        gsize       len)
{
  g_assert (len <= AFORK_WIRE_MAX_PAYLOAD);

  _afork_wire_put_u32 (out, (guint32) len);
  if (len > 0)
    g_byte_array_append (out, data, (guint) len);
}

/* Patches the length of the frame started at @start. Returns %FALSE, and
 * drops the frame, when its payload is larger than the protocol allows. */
gboolean
_afork_wire_end (GByteArray *out,
                 gsize       start)
{
  gsize payload = out->len - start - AFORK_WIRE_HEADER_SIZE;

  if (payload > AFORK_WIRE_MAX_PAYLOAD)
    {
      g_byte_array_set_size (out, start);
      return FALSE;
    }

  _afork_wire_encode_u32 (out->data + start + 1, (guint32) payload);

  return TRUE;
}

void
_afork_wire_put_empty (GByteArray *out,
                       guint8      command)
{
  _afork_wire_begin (out, command);
}

static gboolean
is_known_command (guint8   command,
                  gboolean reply)
{
  if (reply)
    return command == AFORK_WIRE_REPLY_OK || command == AFORK_WIRE_REPLY_ERROR;

  switch (command)
    {
    case AFORK_WIRE_FD:
    case AFORK_WIRE_ARGS:
    case AFORK_WIRE_REQUIRE:
    case AFORK_WIRE_CALL:
    case AFORK_WIRE_FORK:
    case AFORK_WIRE_RUN:
    case AFORK_WIRE_WATCH:
    case AFORK_WIRE_EXEC:
    case AFORK_WIRE_SANDBOX:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Decodes a frame header from the first @len bytes of @data, checking that
 * the command is one of the set (commands or replies) and that the length
 * is sane for it. Never allocates. */
AforkWireStatus
_afork_wire_parse_header (const guint8  *data,
                          gsize          len,
                          gboolean       reply,
                          guint8        *command,
                          guint32       *payload_len,
                          GError       **error)
{
  guint32 plen;

  if (len < AFORK_WIRE_HEADER_SIZE)
    return AFORK_WIRE_STATUS_NEED_MORE;

  *command = data[0];
  plen = _afork_wire_read_u32 (data + 1);

  if (!is_known_command (data[0], reply))
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Unknown command 0x%02x in the afork stream"), data[0]);
      return AFORK_WIRE_STATUS_INVALID;
    }

  if (plen > AFORK_WIRE_MAX_PAYLOAD)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Frame of %u bytes in the afork stream exceeds the limit of %u bytes"),
                   plen, AFORK_WIRE_MAX_PAYLOAD);
      return AFORK_WIRE_STATUS_INVALID;
    }

  if ((data[0] == AFORK_WIRE_FD || data[0] == AFORK_WIRE_FORK ||
       data[0] == AFORK_WIRE_WATCH) && plen != 0)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Command “%c” in the afork stream must have an empty payload"),
                   data[0]);
      return AFORK_WIRE_STATUS_INVALID;
    }

  if ((data[0] == AFORK_WIRE_RUN || data[0] == AFORK_WIRE_EXEC) && plen == 0)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                           _("Run command in the afork stream names nothing to run"));
      return AFORK_WIRE_STATUS_INVALID;
    }

  *payload_len = plen;

  return AFORK_WIRE_STATUS_OK;
}

/* Splits a string list into @strings (an array of AforkWireString pointing
 * into @payload). */
gboolean
_afork_wire_parse_strings (const guint8  *payload,
                           gsize          len,
                           GArray        *strings,
                           GError       **error)
{
  gsize pos = 0;

  while (pos < len)
    {
      AforkWireString s;

      if (len - pos < 4)
        goto truncated;

      s.len = _afork_wire_read_u32 (payload + pos);
      pos += 4;

      if (s.len > len - pos)
        goto truncated;

      s.data = payload + pos;
      pos += s.len;
      g_array_append_val (strings, s);
    }

  return TRUE;

truncated:
  g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                       _("Truncated string list in the afork stream"));
  return FALSE;
}

void
_afork_wire_put_ok_reply (GByteArray *out,
                          GPid        pid)
{
  gsize start = _afork_wire_begin (out, AFORK_WIRE_REPLY_OK);

  _afork_wire_put_u32 (out, (guint32) pid);
  _afork_wire_end (out, start);
}

void
_afork_wire_put_error_reply (GByteArray   *out,
                             const GError *error)
{
  const char *domain = g_quark_to_string (error->domain);
  const char *message = error->message ? error->message : "";
  gsize start = _afork_wire_begin (out, AFORK_WIRE_REPLY_ERROR);

  _afork_wire_put_u32 (out, (guint32) error->code);
  _afork_wire_put_string (out, domain, strlen (domain));
  /* Keep a runaway message within one frame. */
  _afork_wire_put_string (out, message, MIN (strlen (message), 65536));
  _afork_wire_end (out, start);
}

/* Decodes the reply to `r`: on success stores the child's pid; an error
 * reply becomes @error, in the %AFORK_ERROR domain. */
gboolean
_afork_wire_parse_reply (guint8         command,
                         const guint8  *payload,
                         gsize          len,
                         GPid          *pid,
                         GError       **error)
{
  g_autoptr(GArray) strings = NULL;
  const AforkWireString *domain, *message;
  g_autofree char *message_str = NULL;
  g_autofree char *domain_str = NULL;
  guint32 code;

  if (command == AFORK_WIRE_REPLY_OK)
    {
      if (len != 4)
        {
          g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                               _("Malformed acknowledgement from the child process"));
          return FALSE;
        }
      *pid = (GPid) _afork_wire_read_u32 (payload);
      return TRUE;
    }

  strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  if (len < 4 ||
      !_afork_wire_parse_strings (payload + 4, len - 4, strings, NULL) ||
      strings->len != 2)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                           _("Malformed error reply from the child process"));
      return FALSE;
    }

  code = _afork_wire_read_u32 (payload);
  domain = &g_array_index (strings, AforkWireString, 0);
  message = &g_array_index (strings, AforkWireString, 1);
  domain_str = g_utf8_make_valid ((const char *) domain->data, domain->len);
  message_str = g_utf8_make_valid ((const char *) message->data, message->len);

  /* Every error a server reports is in afork's own domain; anything else
   * is kept in the message rather than trusted as a code. */
  if (g_strcmp0 (domain_str, g_quark_to_string (AFORK_ERROR)) == 0 &&
      code <= _AFORK_ERROR_LAST)
    g_set_error_literal (error, AFORK_ERROR, (int) code, message_str);
  else
    g_set_error (error, AFORK_ERROR, AFORK_ERROR_FAILED, "%s (%s, %u)",
                 message_str, domain_str, code);

  return FALSE;
}

/* The size of the payload of a string list, or G_MAXSIZE when it would
 * not fit in a frame. Computed before anything is copied. */
static gsize
strings_size (gsize               size,
              const char * const *strings)
{
  for (guint i = 0; strings != NULL && strings[i] != NULL; i++)
    {
      gsize len = strlen (strings[i]);

      if (len > AFORK_WIRE_MAX_PAYLOAD || size + 4 + len > AFORK_WIRE_MAX_PAYLOAD)
        return G_MAXSIZE;
      size += 4 + len;
    }

  return size;
}

/* Appends an `x` frame: stdio letters, working directory (empty to keep),
 * "1" or "0" for whether an environment follows, the number of
 * arguments, the arguments, the environment. Returns FALSE, appending
 * nothing, when the frame would be larger than the protocol allows. */
gboolean
_afork_wire_put_exec (GByteArray         *out,
                      const char          stdio[3],
                      const char         *cwd,
                      const char * const *argv,
                      const char * const *envp)
{
  const char * const fixed[] = { cwd ? cwd : "", NULL };
  char argc[16];
  gsize size, start;

  g_return_val_if_fail (argv != NULL && argv[0] != NULL, FALSE);

  g_snprintf (argc, sizeof argc, "%u", g_strv_length ((char **) argv));
  size = 4 + 3 + 4 + 1 + 4 + strlen (argc);
  size = strings_size (size, fixed);
  if (size != G_MAXSIZE)
    size = strings_size (size, argv);
  if (size != G_MAXSIZE)
    size = strings_size (size, envp);
  if (size == G_MAXSIZE)
    return FALSE;

  start = _afork_wire_begin (out, AFORK_WIRE_EXEC);
  _afork_wire_put_string (out, stdio, 3);
  _afork_wire_put_string (out, fixed[0], strlen (fixed[0]));
  _afork_wire_put_string (out, envp ? "1" : "0", 1);
  _afork_wire_put_string (out, argc, strlen (argc));
  for (guint i = 0; argv[i] != NULL; i++)
    _afork_wire_put_string (out, argv[i], strlen (argv[i]));
  for (guint i = 0; envp != NULL && envp[i] != NULL; i++)
    _afork_wire_put_string (out, envp[i], strlen (envp[i]));

  return _afork_wire_end (out, start);
}

/* A copy of @s, or NULL if it holds a NUL byte (no C string can). */
static char *
exec_cstring (const AforkWireString *s)
{
  if (s->len > 0 && memchr (s->data, '\0', s->len) != NULL)
    return NULL;

  return g_strndup ((const char *) s->data, s->len);
}

/* Decodes the payload of an `x` frame into @exec, which the caller
 * clears with _afork_wire_exec_clear() whatever the result. */
gboolean
_afork_wire_parse_exec (const guint8   *payload,
                        gsize           len,
                        AforkWireExec  *exec,
                        GError        **error)
{
  g_autoptr(GArray) strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  g_autofree char *has_env = NULL;
  g_autofree char *argc_str = NULL;
  const AforkWireString *stdio;
  guint64 argc = 0;

  memset (exec, 0, sizeof *exec);

  if (!_afork_wire_parse_strings (payload, len, strings, NULL) || strings->len < 5)
    goto malformed;

  stdio = &g_array_index (strings, AforkWireString, 0);
  if (stdio->len != 3)
    goto malformed;
  for (guint i = 0; i < 3; i++)
    {
      if (stdio->data[i] != 'f' && stdio->data[i] != 's' && stdio->data[i] != 'i')
        goto malformed;
      exec->stdio[i] = (char) stdio->data[i];
    }

  exec->cwd = exec_cstring (&g_array_index (strings, AforkWireString, 1));
  has_env = exec_cstring (&g_array_index (strings, AforkWireString, 2));
  argc_str = exec_cstring (&g_array_index (strings, AforkWireString, 3));
  if (exec->cwd == NULL || has_env == NULL || argc_str == NULL ||
      (strcmp (has_env, "0") != 0 && strcmp (has_env, "1") != 0) ||
      !g_ascii_string_to_unsigned (argc_str, 10, 1, strings->len - 4, &argc, NULL))
    goto malformed;
  if (exec->cwd[0] == '\0')
    g_clear_pointer (&exec->cwd, g_free);

  if (has_env[0] == '0' && strings->len != 4 + argc)
    goto malformed;

  exec->argv = g_new0 (char *, argc + 1);
  if (has_env[0] == '1')
    exec->envp = g_new0 (char *, strings->len - 4 - argc + 1);
  for (guint i = 4; i < strings->len; i++)
    {
      char *str = exec_cstring (&g_array_index (strings, AforkWireString, i));

      if (str == NULL)
        goto malformed;
      if (i < 4 + argc)
        exec->argv[i - 4] = str;
      else
        exec->envp[i - 4 - argc] = str;
    }

  return TRUE;

malformed:
  _afork_wire_exec_clear (exec);
  g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                       _("Malformed exec command"));
  return FALSE;
}

void
_afork_wire_exec_clear (AforkWireExec *exec)
{
  g_clear_pointer (&exec->cwd, g_free);
  g_clear_pointer (&exec->argv, g_strfreev);
  g_clear_pointer (&exec->envp, g_strfreev);
}

/* Pool frames ------------------------------------------------------------ */

/* Checks a pool frame's header: calls go to a worker, results, errors and
 * events come from it. */
AforkWireStatus
_afork_wire_parse_pool_header (const guint8  *data,
                               gsize          len,
                               gboolean       from_worker,
                               guint8        *command,
                               guint32       *payload_len,
                               GError       **error)
{
  gboolean known;
  guint32 plen;

  if (len < AFORK_WIRE_HEADER_SIZE)
    return AFORK_WIRE_STATUS_NEED_MORE;

  if (from_worker)
    known = data[0] == AFORK_WIRE_POOL_RESULT || data[0] == AFORK_WIRE_POOL_ERROR ||
            data[0] == AFORK_WIRE_POOL_EVENT;
  else
    known = data[0] == AFORK_WIRE_POOL_CALL || data[0] == AFORK_WIRE_POOL_RING;

  if (!known)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Unknown command 0x%02x in a pool worker's stream"), data[0]);
      return AFORK_WIRE_STATUS_INVALID;
    }

  plen = _afork_wire_read_u32 (data + 1);
  if (plen > AFORK_WIRE_MAX_PAYLOAD)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Frame of %u bytes in a pool worker's stream exceeds the limit of %u bytes"),
                   plen, AFORK_WIRE_MAX_PAYLOAD);
      return AFORK_WIRE_STATUS_INVALID;
    }

  *command = data[0];
  *payload_len = plen;

  return AFORK_WIRE_STATUS_OK;
}

/* Returns FALSE when the value cannot fit in a frame. */
static gboolean
put_variant (GByteArray *out,
             GVariant   *value)
{
  const char *type = g_variant_get_type_string (value);
  gsize size = g_variant_get_size (value);
  guint old_len;

  _afork_wire_put_string (out, type, strlen (type));
  if (size > AFORK_WIRE_MAX_PAYLOAD)
    return FALSE;
  _afork_wire_put_u32 (out, (guint32) size);
  old_len = out->len;
  g_byte_array_set_size (out, old_len + (guint) size);
  /* g_variant_store() wants aligned memory; the frame is not. */
  if (size > 0)
    memcpy (out->data + old_len, g_variant_get_data (value), size);

  return TRUE;
}

gboolean
_afork_wire_put_pool_call (GByteArray *out,
                           const char *function,
                           GVariant   *parameters,
                           guint32     n_fds)
{
  gsize start = _afork_wire_begin (out, AFORK_WIRE_POOL_CALL);

  _afork_wire_put_u32 (out, n_fds);
  _afork_wire_put_string (out, function, strlen (function));
  if (!put_variant (out, parameters))
    {
      g_byte_array_set_size (out, start);
      return FALSE;
    }

  return _afork_wire_end (out, start);
}

/* The ring of the worker's replies: the frame's one descriptor is its
 * memory. */
void
_afork_wire_put_pool_ring (GByteArray *out,
                           guint32     ring_size)
{
  gsize start = _afork_wire_begin (out, AFORK_WIRE_POOL_RING);

  _afork_wire_put_u32 (out, 1);
  _afork_wire_put_u32 (out, ring_size);
  _afork_wire_end (out, start);
}

gboolean
_afork_wire_put_pool_result (GByteArray *out,
                             GVariant   *value,
                             guint32     n_fds)
{
  gsize start = _afork_wire_begin (out, AFORK_WIRE_POOL_RESULT);

  _afork_wire_put_u32 (out, n_fds);
  if (!put_variant (out, value))
    {
      g_byte_array_set_size (out, start);
      return FALSE;
    }

  return _afork_wire_end (out, start);
}

void
_afork_wire_put_pool_error (GByteArray   *out,
                            const GError *error)
{
  const char *domain = g_quark_to_string (error->domain);
  const char *message = error->message ? error->message : "";
  gsize start = _afork_wire_begin (out, AFORK_WIRE_POOL_ERROR);

  if (domain == NULL)
    domain = "";
  _afork_wire_put_u32 (out, (guint32) error->code);
  _afork_wire_put_string (out, domain, MIN (strlen (domain), 1024));
  _afork_wire_put_string (out, message, MIN (strlen (message), 65536));
  _afork_wire_end (out, start);
}

gboolean
_afork_wire_put_pool_event (GByteArray *out,
                            const char *name,
                            GVariant   *value)
{
  gsize start = _afork_wire_begin (out, AFORK_WIRE_POOL_EVENT);

  _afork_wire_put_string (out, name, strlen (name));
  if (!put_variant (out, value))
    {
      g_byte_array_set_size (out, start);
      return FALSE;
    }

  return _afork_wire_end (out, start);
}

/* A string of a pool frame: valid UTF-8 without NUL bytes. */
static char *
pool_string (const AforkWireString *s)
{
  if (memchr (s->data, '\0', s->len) != NULL ||
      !g_utf8_validate ((const char *) s->data, s->len, NULL))
    return NULL;

  return g_strndup ((const char *) s->data, s->len);
}

/* Checks a value of a pool frame and keeps it: as a GVariant, or with
 * @lazy as its type string and serialised form (making a GVariant takes
 * GLib's global lock of type information, which the pool's thread
 * leaves to the caller's). */
static gboolean
pool_value (const AforkWireString *type,
            const AforkWireString *data,
            gboolean               lazy,
            AforkWirePoolFrame    *frame)
{
  const char *type_str = (const char *) type->data;
  const char *end = NULL;
  g_autoptr(GBytes) bytes = NULL;

  /* One complete type, the whole string: a GVariantType needs no NUL. */
  if (type->len == 0 ||
      !g_variant_type_string_scan (type_str, type_str + type->len, &end) ||
      end != type_str + type->len ||
      !g_variant_type_is_definite ((const GVariantType *) type_str))
    return FALSE;

  /* GVariant copes with any bytes in the serialised form (it reads
   * defaults where they make no sense); copied, as the buffer is reused. */
  bytes = g_bytes_new (data->data, data->len);

  if (lazy)
    {
      frame->raw.type = g_strndup (type_str, type->len);
      frame->raw.data = g_steal_pointer (&bytes);
    }
  else
    frame->value = g_variant_ref_sink (g_variant_new_from_bytes ((const GVariantType *) type_str,
                                                                 bytes, FALSE));

  return TRUE;
}

GVariant *
_afork_wire_value_make (const AforkWireValue *value)
{
  if (value->type == NULL)
    return NULL;

  return g_variant_ref_sink (g_variant_new_from_bytes ((const GVariantType *) value->type,
                                                       value->data, FALSE));
}

void
_afork_wire_value_clear (AforkWireValue *value)
{
  g_clear_pointer (&value->type, g_free);
  g_clear_pointer (&value->data, g_bytes_unref);
}

/* Splits @payload into exactly @n_strings strings. */
static gboolean
pool_strings (const guint8    *payload,
              gsize            len,
              AforkWireString *strings,
              guint            n_strings)
{
  gsize pos = 0;

  for (guint i = 0; i < n_strings; i++)
    {
      if (len - pos < 4)
        return FALSE;
      strings[i].len = _afork_wire_read_u32 (payload + pos);
      pos += 4;
      if (strings[i].len > len - pos)
        return FALSE;
      strings[i].data = payload + pos;
      pos += strings[i].len;
    }

  return pos == len;
}

void
_afork_wire_pool_frame_clear (AforkWirePoolFrame *frame)
{
  g_clear_pointer (&frame->function, g_free);
  g_clear_pointer (&frame->name, g_free);
  g_clear_pointer (&frame->value, g_variant_unref);
  _afork_wire_value_clear (&frame->raw);
  g_clear_pointer (&frame->domain, g_free);
  g_clear_pointer (&frame->message, g_free);
}

/* Decodes the payload of a pool frame whose header was checked. */
gboolean
_afork_wire_parse_pool_frame (guint8               command,
                              const guint8        *payload,
                              gsize                len,
                              AforkWirePoolFrame  *frame,
                              GError             **error)
{
  return _afork_wire_parse_pool_frame_full (command, payload, len, FALSE, frame, error);
}

gboolean
_afork_wire_parse_pool_frame_full (guint8               command,
                                   const guint8        *payload,
                                   gsize                len,
                                   gboolean             lazy,
                                   AforkWirePoolFrame  *frame,
                                   GError             **error)
{
  AforkWireString s[3];
  gsize skip = 0;
  guint want;

  memset (frame, 0, sizeof *frame);
  frame->command = command;

  switch (command)
    {
    case AFORK_WIRE_POOL_RING:
      if (len != 8 || _afork_wire_read_u32 (payload) != 1)
        goto malformed;
      frame->n_fds = 1;
      frame->ring_size = _afork_wire_read_u32 (payload + 4);
      return TRUE;
    case AFORK_WIRE_POOL_CALL:
      skip = 4;
      want = 3;
      break;
    case AFORK_WIRE_POOL_RESULT:
      skip = 4;
      want = 2;
      break;
    case AFORK_WIRE_POOL_ERROR:
      skip = 4;
      want = 2;
      break;
    case AFORK_WIRE_POOL_EVENT:
      want = 3;
      break;
    default:
      goto malformed;
    }

  if (len < skip || !pool_strings (payload + skip, len - skip, s, want))
    goto malformed;

  switch (command)
    {
    case AFORK_WIRE_POOL_CALL:
      frame->n_fds = _afork_wire_read_u32 (payload);
      frame->function = pool_string (&s[0]);
      if (frame->function == NULL || frame->function[0] == '\0' ||
          !pool_value (&s[1], &s[2], lazy, frame))
        goto malformed;
      break;
    case AFORK_WIRE_POOL_RESULT:
      frame->n_fds = _afork_wire_read_u32 (payload);
      if (!pool_value (&s[0], &s[1], lazy, frame))
        goto malformed;
      break;
    case AFORK_WIRE_POOL_ERROR:
      if (s[0].len == 0 || memchr (s[0].data, '\0', s[0].len) != NULL)
        goto malformed;
      frame->code = _afork_wire_read_u32 (payload);
      frame->domain = g_utf8_make_valid ((const char *) s[0].data, s[0].len);
      frame->message = g_utf8_make_valid ((const char *) s[1].data, s[1].len);
      break;
    case AFORK_WIRE_POOL_EVENT:
      frame->name = pool_string (&s[0]);
      if (frame->name == NULL || !pool_value (&s[1], &s[2], lazy, frame))
        goto malformed;
      break;
    default:
      g_assert_not_reached ();
    }

  if (frame->n_fds > AFORK_MAX_FDS_PER_MESSAGE)
    goto malformed;

  return TRUE;

malformed:
  _afork_wire_pool_frame_clear (frame);
  g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
               _("Malformed “%c” frame in a pool worker's stream"), command);
  return FALSE;
}

/* Writes the payload of an `s` frame (without its header) describing
 * @sandbox. */
void
_afork_wire_put_sandbox (GByteArray             *out,
                         const AforkWireSandbox *sandbox)
{
  _afork_wire_put_u32 (out, AFORK_WIRE_SANDBOX_VERSION);
  _afork_wire_put_u32 (out, sandbox->flags);
  _afork_wire_put_u32 (out, (guint32) (sandbox->memory_limit & 0xffffffffu));
  _afork_wire_put_u32 (out, (guint32) (sandbox->memory_limit >> 32));
  _afork_wire_put_u32 (out, sandbox->cpu_limit);
  _afork_wire_put_u32 (out, sandbox->landlock_abi);

  for (guint i = 0; sandbox->paths != NULL && i < sandbox->paths->len; i++)
    {
      const AforkWireSandboxPath *p = &g_array_index (sandbox->paths, AforkWireSandboxPath, i);

      _afork_wire_put_u32 (out, p->access);
      _afork_wire_put_string (out, p->path.data, p->path.len);
    }
}

/* Decodes the payload of an `s` frame into @sandbox, whose paths point
 * into @payload. Refuses an unknown version or flag, an unknown access,
 * and a path that is empty, relative or contains a NUL byte. On failure
 * @sandbox is left cleared. */
gboolean
_afork_wire_parse_sandbox (const guint8      *payload,
                           gsize              len,
                           AforkWireSandbox  *sandbox,
                           GError           **error)
{
  gsize pos = AFORK_WIRE_SANDBOX_HEADER_SIZE;
  guint32 version;

  memset (sandbox, 0, sizeof *sandbox);

  if (len < AFORK_WIRE_SANDBOX_HEADER_SIZE)
    goto malformed;

  version = _afork_wire_read_u32 (payload);
  if (version != AFORK_WIRE_SANDBOX_VERSION)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Sandbox description of version %u in the afork stream, "
                     "but this server reads version %u"),
                   version, AFORK_WIRE_SANDBOX_VERSION);
      return FALSE;
    }

  sandbox->flags = _afork_wire_read_u32 (payload + 4);
  sandbox->memory_limit = (guint64) _afork_wire_read_u32 (payload + 8) |
                          ((guint64) _afork_wire_read_u32 (payload + 12) << 32);
  sandbox->cpu_limit = _afork_wire_read_u32 (payload + 16);
  sandbox->landlock_abi = _afork_wire_read_u32 (payload + 20);
  if ((sandbox->flags & ~(guint32) AFORK_WIRE_SANDBOX_ALL_FLAGS) != 0)
    goto malformed;

  sandbox->paths = g_array_new (FALSE, FALSE, sizeof (AforkWireSandboxPath));
  while (pos < len)
    {
      AforkWireSandboxPath p;

      if (len - pos < 8)
        goto malformed;
      p.access = _afork_wire_read_u32 (payload + pos);
      p.path.len = _afork_wire_read_u32 (payload + pos + 4);
      pos += 8;
      if (p.path.len > len - pos)
        goto malformed;
      p.path.data = payload + pos;
      pos += p.path.len;

      if ((p.access != AFORK_WIRE_SANDBOX_READ && p.access != AFORK_WIRE_SANDBOX_WRITE) ||
          p.path.len == 0 || p.path.data[0] != '/' ||
          memchr (p.path.data, '\0', p.path.len) != NULL)
        goto malformed;

      g_array_append_val (sandbox->paths, p);
    }

  return TRUE;

malformed:
  _afork_wire_sandbox_clear (sandbox);
  g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                       _("Malformed sandbox description in the afork stream"));
  return FALSE;
}

void
_afork_wire_sandbox_clear (AforkWireSandbox *sandbox)
{
  g_clear_pointer (&sandbox->paths, g_array_unref);
  memset (sandbox, 0, sizeof *sandbox);
}
