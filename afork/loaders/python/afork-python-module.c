/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The `afork` module that Python code running in an afork process
 * imports: the child a run or call function receives, and the two
 * wrappers a function returns when the type a value suggests is not the
 * one it means (an exact GVariant type, a descriptor). It is part of the
 * loader, so that nothing needs to be installed on Python's path. */
#include "config.h"

#include "afork-python-private.h"

static const char module_source[] =
"\"\"\"What afork gives Python code running in its processes.\n"
"\n"
"Run functions take a Child; call functions a Child and their string\n"
"arguments; pool functions the call's parameters. A pool function returns\n"
"a value, converted to a GVariant of the type it suggests; Variant and fd()\n"
"say what it cannot.\n"
"\"\"\"\n"
"\n"
"class Child:\n"
"    \"\"\"The process as the parent made it.\n"
"\n"
"    args: the arguments sent before run, in order: str (bytes when not\n"
"    UTF-8) and int descriptors. socket: the communication socket, a\n"
"    socket.socket (run functions only; None in call functions). fileno:\n"
"    its descriptor. owner: the parent's pid.\"\"\"\n"
"\n"
"    __slots__ = ('args', 'socket', 'fileno', 'owner')\n"
"\n"
"    def __init__(self, args, fileno, owner, run):\n"
"        self.args = args\n"
"        self.fileno = fileno\n"
"        self.owner = owner\n"
"        if run:\n"
"            # Imported here: a template that only serves calls does not\n"
"            # carry the socket module and what it imports into every fork.\n"
"            import socket\n"
"            self.socket = socket.socket(fileno=fileno)\n"
"        else:\n"
"            self.socket = None\n"
"\n"
"    def __repr__(self):\n"
"        return 'afork.Child(args=%r, fileno=%d)' % (self.args, self.fileno)\n"
"\n"
"\n"
"class Variant:\n"
"    \"\"\"A value to be sent as exactly this GVariant type, e.g.\n"
"    Variant('u', 5) or Variant('a{sv}', {}). A GLib.Variant, where\n"
"    PyGObject is importable, is accepted as well.\"\"\"\n"
"\n"
"    __slots__ = ('type_string', 'value')\n"
"\n"
"    def __init__(self, type_string, value):\n"
"        self.type_string = type_string\n"
"        self.value = value\n"
"\n"
"    def __repr__(self):\n"
"        return 'afork.Variant(%r, %r)' % (self.type_string, self.value)\n"
"\n"
"\n"
"class FD:\n"
"    \"\"\"A descriptor to return (GVariant type h): the caller receives a\n"
"    copy in the reply's descriptor list. With close, the worker's own\n"
"    descriptor is closed once copied.\"\"\"\n"
"\n"
"    __slots__ = ('fd', 'close')\n"
"\n"
"    def __init__(self, fd, close=False):\n"
"        self.fd = int(fd)\n"
"        self.close = bool(close)\n"
"\n"
"    def fileno(self):\n"
"        return self.fd\n"
"\n"
"    def __repr__(self):\n"
"        return 'afork.fd(%d)' % self.fd\n"
"\n"
"\n"
"def fd(fd, close=False):\n"
"    \"\"\"Returns fd (an int or an object with fileno()) as a descriptor.\"\"\"\n"
"    if not isinstance(fd, int):\n"
"        fd = fd.fileno()\n"
"    return FD(fd, close)\n";

gboolean
_afork_python_module_install (void)
{
  PyObject *code = NULL;
  PyObject *module = NULL;

  code = Py_CompileString (module_source, "<afork>", Py_file_input);
  if (code == NULL)
    return FALSE;

  /* Registers it in sys.modules as well. */
  module = PyImport_ExecCodeModuleEx ("afork", code, "<afork>");
  Py_DECREF (code);
  if (module == NULL)
    return FALSE;

  Py_DECREF (module);
  return TRUE;
}

PyObject *
_afork_python_string_new (const char *data,
                          gsize       len)
{
  if (g_utf8_validate_len (data, len, NULL))
    return PyUnicode_DecodeUTF8 (data, (Py_ssize_t) len, "strict");

  return PyBytes_FromStringAndSize (data, (Py_ssize_t) len);
}

PyObject *
_afork_python_child_new (AforkChild *child,
                         gboolean    run)
{
  PyObject *afork = NULL;
  PyObject *args = NULL;
  PyObject *result = NULL;
  guint n = afork_child_get_n_args (child);

  args = PyList_New (n);
  if (args == NULL)
    return NULL;

  for (guint i = 0; i < n; i++)
    {
      PyObject *item;

      if (afork_child_arg_is_fd (child, i))
        {
          /* A run function owns its descriptors, like its socket. */
          int fd = run ? afork_child_steal_fd (child, i) : afork_child_peek_fd (child, i);
          item = PyLong_FromLong (fd);
        }
      else
        {
          gsize len = 0;
          const char *data = afork_child_get_arg (child, i, &len);
          item = _afork_python_string_new (data, len);
        }

      if (item == NULL)
        goto out;
      PyList_SET_ITEM (args, i, item);
    }

  afork = PyImport_ImportModule ("afork");
  if (afork == NULL)
    goto out;

  result = PyObject_CallMethod (afork, "Child", "Oiii", args,
                                afork_child_get_fd (child),
                                (int) afork_child_get_owner (child),
                                run ? 1 : 0);

out:
  Py_XDECREF (afork);
  Py_XDECREF (args);
  return result;
}

char *
_afork_python_describe_error (void)
{
  PyObject *type = NULL, *value = NULL, *traceback = NULL;
  PyObject *module = NULL, *qualname = NULL, *text = NULL;
  GString *out = g_string_new (NULL);
  const char *str;

  PyErr_Fetch (&type, &value, &traceback);
  PyErr_NormalizeException (&type, &value, &traceback);
  if (type == NULL)
    return g_string_free (out, FALSE);

  module = PyObject_GetAttrString (type, "__module__");
  qualname = PyObject_GetAttrString (type, "__qualname__");
  PyErr_Clear ();

  if (module != NULL && PyUnicode_Check (module) &&
      (str = PyUnicode_AsUTF8 (module)) != NULL &&
      !g_str_equal (str, "builtins") && !g_str_equal (str, "__main__"))
    g_string_append_printf (out, "%s.", str);
  if (qualname != NULL && PyUnicode_Check (qualname) &&
      (str = PyUnicode_AsUTF8 (qualname)) != NULL)
    g_string_append (out, str);
  else
    g_string_append (out, ((PyTypeObject *) type)->tp_name);

  if (value != NULL)
    text = PyObject_Str (value);
  if (text != NULL && (str = PyUnicode_AsUTF8 (text)) != NULL && str[0] != '\0')
    g_string_append_printf (out, ": %s", str);
  PyErr_Clear ();

  Py_XDECREF (module);
  Py_XDECREF (qualname);
  Py_XDECREF (text);
  PyErr_Restore (type, value, traceback);

  return g_string_free (out, FALSE);
}
