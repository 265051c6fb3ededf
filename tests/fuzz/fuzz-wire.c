/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the wire codec (afork-wire.c): the decoder must
 * accept or refuse any bytes without crashing, reading out of bounds or
 * allocating for a length it has not seen, and the encoder's output must
 * decode to what was encoded.
 *
 * The first byte of an input picks the mode:
 *   0  a command stream, as a server reads it
 *   1  a reply, as a parent reads it
 *   2  strings (separated by 0xff) encoded into a frame, then decoded
 *   3  the payload of an exec command, decoded, then encoded again and
 *      decoded to the same request
 *   4  a sandbox description (`s` payload): decoded; what decodes is
 *      encoded again and must give the same bytes
 *   5  a pool worker's stream: the next byte picks the direction (even:
 *      calls, as a worker reads them; odd: replies, as the pool reads them)
 *   6  a value built from the bytes (a string and a byte array) encoded
 *      into each pool frame, then decoded */
#include "afork-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "afork-wire-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean
is_string_list (guint8 command)
{
  return command == AFORK_WIRE_ARGS || command == AFORK_WIRE_REQUIRE ||
         command == AFORK_WIRE_CALL || command == AFORK_WIRE_RUN ||
         command == AFORK_WIRE_EXEC;
}

static void
check_strings (const guint8 *payload,
               gsize         len,
               GArray       *strings)
{
  for (guint i = 0; i < strings->len; i++)
    {
      const AforkWireString *s = &g_array_index (strings, AforkWireString, i);

      /* Every string lies inside the payload. */
      if (s->data < payload || s->data + s->len > payload + len)
        abort ();
    }
}

static void
fuzz_commands (const guint8 *data,
               gsize         size)
{
  gsize pos = 0;

  while (pos < size)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) strings = NULL;
      guint8 command = 0;
      guint32 plen = 0;
      AforkWireStatus status;

      status = _afork_wire_parse_header (data + pos, size - pos, FALSE, &command, &plen, &error);
      if (status == AFORK_WIRE_STATUS_NEED_MORE)
        {
          if (size - pos >= AFORK_WIRE_HEADER_SIZE || error != NULL)
            abort ();
          return;
        }
      if (status == AFORK_WIRE_STATUS_INVALID)
        {
          /* Refused with a message. */
          if (error == NULL || error->message == NULL || error->message[0] == '\0')
            abort ();
          return;
        }
      if (error != NULL || plen > AFORK_WIRE_MAX_PAYLOAD)
        abort ();
      if (size - pos - AFORK_WIRE_HEADER_SIZE < plen)
        return;   /* a server would wait for the rest */

      if (command == AFORK_WIRE_SANDBOX)
        {
          const guint8 *payload = data + pos + AFORK_WIRE_HEADER_SIZE;
          AforkWireSandbox sandbox;

          if (_afork_wire_parse_sandbox (payload, plen, &sandbox, &error))
            _afork_wire_sandbox_clear (&sandbox);
          else if (error == NULL || sandbox.paths != NULL)
            abort ();
        }
      else if (is_string_list (command))
        {
          const guint8 *payload = data + pos + AFORK_WIRE_HEADER_SIZE;

          strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
          if (_afork_wire_parse_strings (payload, plen, strings, &error))
            check_strings (payload, plen, strings);
          else if (error == NULL)
            abort ();
        }

      pos += AFORK_WIRE_HEADER_SIZE + plen;
    }
}

static void
fuzz_reply (const guint8 *data,
            gsize         size)
{
  g_autoptr(GError) error = NULL;
  guint8 command = 0;
  guint32 plen = 0;
  GPid pid = 0;

  if (_afork_wire_parse_header (data, size, TRUE, &command, &plen, &error) != AFORK_WIRE_STATUS_OK)
    return;
  if (size - AFORK_WIRE_HEADER_SIZE < plen)
    return;

  if (_afork_wire_parse_reply (command, data + AFORK_WIRE_HEADER_SIZE, plen, &pid, &error))
    {
      if (command != AFORK_WIRE_REPLY_OK || error != NULL)
        abort ();
    }
  else
    {
      /* Always a message in afork's domain, and valid UTF-8, even for a
       * foreign domain that is not (corpus entry reply-error-bad-domain). */
      if (error == NULL || error->domain != AFORK_ERROR)
        abort ();
      if (!g_utf8_validate (error->message, -1, NULL))
        abort ();
    }
}

static void
fuzz_round_trip (const guint8 *data,
                 gsize         size)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GArray) strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  g_autoptr(GArray) expected = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  g_autoptr(GError) error = NULL;
  gsize start, pos = 0;
  guint8 command = 0;
  guint32 plen = 0;

  start = _afork_wire_begin (out, AFORK_WIRE_ARGS);
  while (pos <= size)
    {
      const guint8 *end = memchr (data + pos, 0xff, size - pos);
      AforkWireString s = { data + pos, (guint32) ((end ? (gsize) (end - data) : size) - pos) };

      _afork_wire_put_string (out, s.data, s.len);
      g_array_append_val (expected, s);
      pos += s.len + 1;
    }
  if (!_afork_wire_end (out, start))
    abort ();

  if (_afork_wire_parse_header (out->data, out->len, FALSE, &command, &plen, &error) != AFORK_WIRE_STATUS_OK ||
      command != AFORK_WIRE_ARGS || plen != out->len - AFORK_WIRE_HEADER_SIZE)
    abort ();
  if (!_afork_wire_parse_strings (out->data + AFORK_WIRE_HEADER_SIZE, plen, strings, &error))
    abort ();
  if (strings->len != expected->len)
    abort ();
  for (guint i = 0; i < strings->len; i++)
    {
      const AforkWireString *a = &g_array_index (strings, AforkWireString, i);
      const AforkWireString *b = &g_array_index (expected, AforkWireString, i);

      if (a->len != b->len || (a->len > 0 && memcmp (a->data, b->data, a->len) != 0))
        abort ();
    }
}

static gboolean
strv_equal0 (char **a,
             char **b)
{
  if (a == NULL || b == NULL)
    return a == b;

  return g_strv_equal ((const char * const *) a, (const char * const *) b);
}

static void
fuzz_exec (const guint8 *data,
           gsize         size)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  AforkWireExec exec, again;
  guint8 command = 0;
  guint32 plen = 0;

  if (!_afork_wire_parse_exec (data, size, &exec, &error))
    {
      if (error == NULL || error->domain != AFORK_ERROR || exec.argv != NULL ||
          exec.envp != NULL || exec.cwd != NULL)
        abort ();
      return;
    }

  /* What the server relies on. */
  if (error != NULL || exec.argv == NULL || exec.argv[0] == NULL ||
      strlen (exec.stdio) != 3 || strspn (exec.stdio, "fsi") != 3 ||
      (exec.cwd != NULL && exec.cwd[0] == '\0'))
    abort ();

  if (!_afork_wire_put_exec (out, exec.stdio, exec.cwd,
                             (const char * const *) exec.argv,
                             (const char * const *) exec.envp))
    abort ();
  if (_afork_wire_parse_header (out->data, out->len, FALSE, &command, &plen, &error) != AFORK_WIRE_STATUS_OK ||
      command != AFORK_WIRE_EXEC || plen != out->len - AFORK_WIRE_HEADER_SIZE)
    abort ();
  if (!_afork_wire_parse_exec (out->data + AFORK_WIRE_HEADER_SIZE, plen, &again, &error))
    abort ();
  if (strcmp (exec.stdio, again.stdio) != 0 || g_strcmp0 (exec.cwd, again.cwd) != 0 ||
      !strv_equal0 (exec.argv, again.argv) || !strv_equal0 (exec.envp, again.envp))
    abort ();

  _afork_wire_exec_clear (&exec);
  _afork_wire_exec_clear (&again);
}

static void
fuzz_sandbox (const guint8 *data,
              gsize         size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) out = NULL;
  AforkWireSandbox sandbox;

  if (!_afork_wire_parse_sandbox (data, size, &sandbox, &error))
    {
      if (error == NULL || error->domain != AFORK_ERROR || sandbox.paths != NULL)
        abort ();
      return;
    }
  if (error != NULL || sandbox.paths == NULL)
    abort ();

  for (guint i = 0; i < sandbox.paths->len; i++)
    {
      const AforkWireSandboxPath *p = &g_array_index (sandbox.paths, AforkWireSandboxPath, i);

      /* Inside the payload, absolute, without a NUL byte. */
      if (p->path.data < data || p->path.data + p->path.len > data + size ||
          p->path.len == 0 || p->path.data[0] != '/' ||
          memchr (p->path.data, '\0', p->path.len) != NULL)
        abort ();
    }

  /* The encoder writes back exactly what was decoded. */
  out = g_byte_array_new ();
  _afork_wire_put_sandbox (out, &sandbox);
  if (out->len != size || memcmp (out->data, data, size) != 0)
    abort ();

  _afork_wire_sandbox_clear (&sandbox);
}

static void
fuzz_pool_stream (const guint8 *data,
                  gsize         size)
{
  gboolean from_worker;
  gboolean lazy;
  gsize pos = 1;

  if (size < 1)
    return;
  from_worker = data[0] & 1;
  /* Values as the pool keeps them, made into GVariants later. */
  lazy = (data[0] & 2) != 0;

  while (pos < size)
    {
      g_autoptr(GError) error = NULL;
      AforkWirePoolFrame frame;
      guint8 command = 0;
      guint32 plen = 0;
      AforkWireStatus status;

      status = _afork_wire_parse_pool_header (data + pos, size - pos, from_worker,
                                              &command, &plen, &error);
      if (status == AFORK_WIRE_STATUS_NEED_MORE)
        return;
      if (status == AFORK_WIRE_STATUS_INVALID)
        {
          if (error == NULL || error->message[0] == '\0')
            abort ();
          return;
        }
      if (size - pos - AFORK_WIRE_HEADER_SIZE < plen)
        return;

      if (_afork_wire_parse_pool_frame_full (command, data + pos + AFORK_WIRE_HEADER_SIZE, plen,
                                             lazy, &frame, &error))
        {
          if (lazy && (frame.value != NULL || (frame.raw.type == NULL) != (frame.raw.data == NULL)))
            abort ();
          if (frame.raw.type != NULL)
            frame.value = _afork_wire_value_make (&frame.raw);
          /* What was accepted is usable: a value of a definite type, read
           * through (GVariant copes with any serialised bytes). */
          if (error != NULL || frame.n_fds > AFORK_MAX_FDS_PER_MESSAGE)
            abort ();
          if (frame.value != NULL)
            {
              g_autofree char *text = NULL;

              if (!g_variant_type_is_definite (g_variant_get_type (frame.value)))
                abort ();
              text = g_variant_print (frame.value, TRUE);
            }
          if (frame.command == AFORK_WIRE_POOL_ERROR &&
              (frame.domain == NULL || frame.message == NULL ||
               !g_utf8_validate (frame.message, -1, NULL)))
            abort ();
          _afork_wire_pool_frame_clear (&frame);
        }
      else if (error == NULL)
        abort ();

      pos += AFORK_WIRE_HEADER_SIZE + plen;
    }
}

static void
fuzz_pool_round_trip (const guint8 *data,
                      gsize         size)
{
  g_autofree char *text = g_utf8_make_valid ((const char *) data, size);
  g_autofree char *name = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) domain_error = NULL;
  gsize pos = 0;

  /* No NUL in the names: cut at the first one. */
  name = g_strdup (text[0] != '\0' ? text : "f");
  value = g_variant_ref_sink (g_variant_new ("(s@ayu)", text,
                                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                        data, size, 1),
                                             (guint32) size));
  domain_error = g_error_new_literal (g_quark_from_string (name), (int) size, text);

  if (!_afork_wire_put_pool_call (out, name, value, 3) ||
      !_afork_wire_put_pool_result (out, value, 2) ||
      !_afork_wire_put_pool_event (out, name, value))
    abort ();
  _afork_wire_put_pool_error (out, domain_error);
  _afork_wire_put_pool_ring (out, (guint32) size);

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GError) error = NULL;
      AforkWirePoolFrame frame;
      guint8 command = 0;
      guint32 plen = 0;

      if (_afork_wire_parse_pool_header (out->data + pos, out->len - pos, i > 0 && i < 4,
                                         &command, &plen, &error) != AFORK_WIRE_STATUS_OK ||
          !_afork_wire_parse_pool_frame (command, out->data + pos + AFORK_WIRE_HEADER_SIZE,
                                         plen, &frame, &error))
        abort ();

      switch (i)
        {
        case 0:
          if (command != AFORK_WIRE_POOL_CALL || frame.n_fds != 3 ||
              g_strcmp0 (frame.function, name) != 0 || !g_variant_equal (frame.value, value))
            abort ();
          break;
        case 1:
          if (command != AFORK_WIRE_POOL_RESULT || frame.n_fds != 2 ||
              !g_variant_equal (frame.value, value))
            abort ();
          break;
        case 2:
          if (command != AFORK_WIRE_POOL_EVENT || g_strcmp0 (frame.name, name) != 0 ||
              !g_variant_equal (frame.value, value))
            abort ();
          break;
        case 4:
          if (command != AFORK_WIRE_POOL_RING || frame.n_fds != 1 ||
              frame.ring_size != (guint32) size)
            abort ();
          break;
        default:
          if (command != AFORK_WIRE_POOL_ERROR || frame.code != (guint32) size ||
              (g_utf8_validate (name, -1, NULL) && strlen (name) <= 1024 &&
               g_strcmp0 (frame.domain, name) != 0) ||
              (strlen (text) <= 65536 && g_strcmp0 (frame.message, text) != 0))
            abort ();
          break;
        }
      _afork_wire_pool_frame_clear (&frame);
      pos += AFORK_WIRE_HEADER_SIZE + plen;
    }
  if (pos != out->len)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  if (size < 1)
    return 0;

  switch (data[0] % 7)
    {
    case 0:
      fuzz_commands (data + 1, size - 1);
      break;
    case 1:
      fuzz_reply (data + 1, size - 1);
      break;
    case 2:
      fuzz_round_trip (data + 1, size - 1);
      break;
    case 3:
      fuzz_exec (data + 1, size - 1);
      break;
    case 4:
      fuzz_sandbox (data + 1, size - 1);
      break;
    case 5:
      fuzz_pool_stream (data + 1, size - 1);
      break;
    default:
      fuzz_pool_round_trip (data + 1, size - 1);
      break;
    }

  return 0;
}
