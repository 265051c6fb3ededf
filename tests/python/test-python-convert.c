/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GVariant ↔ Python, both ways, for every basic type and the containers:
 * the functions of pymodules/pyworker.py are called with GVariant tuples
 * and their results compared. The calls go to the loader's pool_call
 * entry in a real interpreter: directly, in a process of the test (so
 * that the conversions are checked without a pool), and through a pool
 * (test-python-pool). */
#include "config.h"

#include "afork-test-common.h"

#include <gmodule.h>
#include <string.h>

#include "afork-loader-private.h"

static const AforkLoader *loader;

/* Calls python:pyworker.@function with @parameters (floating is sunk). */
static GVariant *
call (const char  *function,
      GVariant    *parameters,
      GError     **error)
{
  g_autofree char *name = g_strconcat ("pyworker.", function, NULL);
  g_autoptr(GVariant) params = parameters ? g_variant_ref_sink (parameters) : NULL;
  gpointer handle = loader->resolve (name, error);
  GVariant *result;

  if (handle == NULL)
    return NULL;
  result = loader->pool_call (handle, NULL, params, error);
  return result ? g_variant_ref_sink (result) : NULL;
}

static void
assert_call (const char *function,
             GVariant   *parameters,
             const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = call (function, parameters, &error);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (result);
  text = g_variant_print (result, TRUE);
  g_assert_cmpstr (text, ==, expected);
}

static void
assert_call_error (const char *function,
                   GVariant   *parameters,
                   const char *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = call (function, parameters, &error);

  g_assert_null (result);
  g_assert_nonnull (error);
  g_assert_cmpstr (g_quark_to_string (error->domain), ==, "afork-python-error-quark");
  g_assert_cmpint (error->code, ==, 0);
  if (!g_str_has_prefix (error->message, message))
    g_error ("“%s” does not start with “%s”", error->message, message);
}

/* Into Python: what each GVariant type becomes. */
static void
test_to_python (void)
{
  assert_call ("describe",
               g_variant_new_parsed ("(true, byte 200, int16 -3, uint16 4, int32 -5, uint32 6,"
                                     " int64 -7, uint64 18446744073709551615, handle 3, 2.5,"
                                     " 'héllo', objectpath '/a/b', signature 'a{sv}')"),
               "['bool True', 'int 200', 'int -3', 'int 4', 'int -5', 'int 6', 'int -7', "
               "'int 18446744073709551615', 'int 3', 'float 2.5', \"str 'héllo'\", "
               "\"str '/a/b'\", \"str 'a{sv}'\"]");
  assert_call ("describe",
               g_variant_new_parsed ("(@ay [98, 1, 0], [1, 2], @as [], {'k': <1>, 'l': <'s'>},"
                                     " (1, 'x'), <<int32 9>>, @mi nothing, @mi just 4,"
                                     " [@ay [97], @ay []], @a{is} {1: 'one'})"),
               "[\"bytes b'b\\\\x01\\\\x00'\", 'list [1, 2]', 'list []', "
               "\"dict {'k': 1, 'l': 's'}\", \"tuple (1, 'x')\", 'int 9', 'NoneType None', "
               "'int 4', \"list [b'a', b'']\", \"dict {1: 'one'}\"]");
  /* No parameters: no arguments. */
  assert_call ("describe", NULL, "@av []");
}

/* Out of Python: the type a value suggests. */
static void
test_from_python (void)
{
  assert_call ("echo_values",
               g_variant_new_parsed ("(true, 5, 2.5, 'text', b'raw', ['a', 'b'], (1, 'x'),"
                                     " {'one': 1}, {'a': <1>, 'b': <'x'>}, [<1>, <'x'>],"
                                     " uint64 18446744073709551615)"),
               "(true, int64 5, 2.5, 'text', b'raw', ['a', 'b'], (int64 1, 'x'), "
               "{'one': int64 1}, {'a': <int64 1>, 'b': <'x'>}, [<int64 1>, <'x'>], "
               "uint64 18446744073709551615)");
  assert_call ("add", g_variant_new ("(ii)", 2, 3), "int64 5");
  assert_call ("add", g_variant_new ("(ss)", "con", "cat"), "'concat'");
  assert_call ("echo_values", g_variant_new_parsed ("(@as [], @a{sv} {})"),
               "(@av [], @a{sv} {})");
  /* None: no value, which the pool replies as (). */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = call ("nothing", NULL, &error);

    g_assert_no_error (error);
    g_assert_null (result);
  }
}

/* afork.Variant: exact types. */
static void
test_exact_types (void)
{
  static const struct { const char *type; const char *value; const char *expected; } cases[] = {
    { "b", "true", "true" },
    { "y", "200", "byte 0xc8" },
    { "n", "-3", "int16 -3" },
    { "q", "4", "uint16 4" },
    { "i", "-5", "-5" },
    { "u", "6", "uint32 6" },
    { "x", "-7", "int64 -7" },
    { "t", "8", "uint64 8" },
    { "d", "2.5", "2.5" },
    { "s", "'s'", "'s'" },
    { "o", "'/org/gnome'", "objectpath '/org/gnome'" },
    { "g", "'a{sv}'", "signature 'a{sv}'" },
    { "v", "<'inner'>", "<'inner'>" },
    { "ay", "b'abc'", "b'abc'" },
    { "ai", "[1, 2]", "[1, 2]" },
    { "a{sv}", "{'a': <1>}", "{'a': <int64 1>}" },
    { "a{us}", "{1: 'x'}", "{uint32 1: 'x'}" },
    { "(yq)", "(1, 2)", "(byte 0x01, uint16 2)" },
    { "mi", "@mi nothing", "@mi nothing" },
    { "mi", "@mi 3", "@mi 3" },
    { "aas", "[['a'], []]", "[['a'], []]" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *parsed = g_strdup_printf ("('%s', %s)", cases[i].type, cases[i].value);
      assert_call ("typed", g_variant_new_parsed (parsed), cases[i].expected);
    }
}

static void
test_glib_variant (void)
{
  assert_call ("glib_variant", NULL, "(uint32 7, uint16 8)");
}

static void
test_errors (void)
{
  assert_call_error ("typed", g_variant_new_parsed ("('y', 300)"), "OverflowError: 300");
  assert_call_error ("typed", g_variant_new_parsed ("('o', 'no path')"), "ValueError: ");
  assert_call_error ("typed", g_variant_new_parsed ("('a*', 1)"), "ValueError: ");
  assert_call_error ("typed", g_variant_new_parsed ("('(ii)', [1])"), "ValueError: ");
  assert_call_error ("unconvertible", NULL, "TypeError: ");
  assert_call_error ("echo_values", g_variant_new_parsed ("(@mi nothing,)"), "TypeError: ");
  assert_call_error ("fail", g_variant_new_parsed ("('ValueError', 'bad value')"),
                     "ValueError: bad value");
  assert_call_error ("fail", g_variant_new_parsed ("('KeyError', 'k')"), "KeyError: 'k'");
  assert_call_error ("fail", g_variant_new_parsed ("('other', 'm')"), "RuntimeError: m");
  /* A call with the wrong number of arguments is a TypeError too. */
  assert_call_error ("add", g_variant_new_parsed ("(1,)"), "TypeError: ");
}

static void
test_large (void)
{
  gsize len = 1024 * 1024;
  g_autofree guint8 *data = g_malloc (len);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) bytes = NULL;

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 7);
  result = call ("echo_values",
                 g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1)),
                 &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (result, G_VARIANT_TYPE ("(ay)")));
  bytes = g_variant_get_child_value (result, 0);
  g_assert_cmpmem (g_variant_get_data (bytes), g_variant_get_size (bytes), data, len);
}

int
main (int   argc,
      char *argv[])
{
  const char *dir = g_getenv ("AFORK_LOADER_PATH");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  AforkLoaderEntry entry = NULL;
  GModule *module;

  afork_test_init (&argc, &argv);

  g_assert_nonnull (dir);
  path = g_build_filename (dir, "python.so", NULL);
  module = g_module_open (path, 0);
  if (module == NULL)
    g_error ("%s: %s", path, g_module_error ());
  g_assert_true (g_module_symbol (module, AFORK_LOADER_ENTRY, (gpointer *) &entry));
  loader = entry ();
  g_assert_true (loader->require ("pyworker", &error));
  g_assert_no_error (error);

  g_test_add_func ("/afork/python/convert/to-python", test_to_python);
  g_test_add_func ("/afork/python/convert/from-python", test_from_python);
  g_test_add_func ("/afork/python/convert/exact-types", test_exact_types);
  g_test_add_func ("/afork/python/convert/glib-variant", test_glib_variant);
  g_test_add_func ("/afork/python/convert/errors", test_errors);
  g_test_add_func ("/afork/python/convert/large", test_large);

  return g_test_run ();
}
