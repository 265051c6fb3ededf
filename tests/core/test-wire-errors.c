/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Errors on the wire: every code of AforkError survives an error reply
 * (the codec's own functions, linked from the library's objects), and a
 * code or domain the parent does not know is kept in the message rather
 * than trusted. */
#include <gio/gio.h>

#include "afork-enum-types.h"
#include "afork-error.h"
#include "afork-private.h"
#include "afork-wire-private.h"

#include <string.h>

/* Encodes @error as a server's error reply and decodes it as the parent
 * does. */
static GError *
round_trip (const GError *error)
{
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  GError *decoded = NULL;
  guint8 command = 0;
  guint32 payload_len = 0;
  GPid pid = 0;

  _afork_wire_put_error_reply (frame, error);
  g_assert_cmpint (_afork_wire_parse_header (frame->data, frame->len, TRUE, &command,
                                             &payload_len, NULL),
                   ==, AFORK_WIRE_STATUS_OK);
  g_assert_cmpuint (AFORK_WIRE_HEADER_SIZE + payload_len, ==, frame->len);
  g_assert_false (_afork_wire_parse_reply (command, frame->data + AFORK_WIRE_HEADER_SIZE,
                                           payload_len, &pid, &decoded));
  g_assert_nonnull (decoded);

  return decoded;
}

/* Each value of the enumeration, the last one included, comes back with
 * its code and message; the codec's bound is that last value. */
static void
test_every_code (void)
{
  GEnumClass *klass = g_type_class_ref (AFORK_TYPE_ERROR);

  g_assert_cmpint (klass->maximum, ==, _AFORK_ERROR_LAST);

  for (guint i = 0; i < klass->n_values; i++)
    {
      int code = klass->values[i].value;
      g_autoptr(GError) error = g_error_new (AFORK_ERROR, code, "message of %s",
                                             klass->values[i].value_name);
      g_autoptr(GError) decoded = round_trip (error);

      g_test_message ("%s", klass->values[i].value_name);
      g_assert_error (decoded, AFORK_ERROR, code);
      g_assert_cmpstr (decoded->message, ==, error->message);
    }

  g_type_class_unref (klass);
}

/* A code past the last, and a domain other than afork's, become
 * AFORK_ERROR_FAILED with what was sent in the message. */
static void
test_unknown_code_and_domain (void)
{
  g_autoptr(GError) beyond = g_error_new_literal (AFORK_ERROR, _AFORK_ERROR_LAST + 1, "beyond");
  g_autoptr(GError) foreign = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "foreign");
  g_autoptr(GError) decoded_beyond = round_trip (beyond);
  g_autoptr(GError) decoded_foreign = round_trip (foreign);
  g_autofree char *beyond_code = g_strdup_printf ("%d", _AFORK_ERROR_LAST + 1);

  g_assert_error (decoded_beyond, AFORK_ERROR, AFORK_ERROR_FAILED);
  g_assert_nonnull (strstr (decoded_beyond->message, "beyond"));
  g_assert_nonnull (strstr (decoded_beyond->message, beyond_code));

  g_assert_error (decoded_foreign, AFORK_ERROR, AFORK_ERROR_FAILED);
  g_assert_nonnull (strstr (decoded_foreign->message, "foreign"));
  g_assert_nonnull (strstr (decoded_foreign->message, g_quark_to_string (G_IO_ERROR)));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/afork/wire/error-reply/every-code", test_every_code);
  g_test_add_func ("/afork/wire/error-reply/unknown", test_unknown_code_and_domain);

  return g_test_run ();
}
