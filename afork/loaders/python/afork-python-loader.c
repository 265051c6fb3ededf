/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Python loader: names that start with "python:" run in an
 * interpreter embedded in the server process. It is started at the first
 * such name, modules are imported in the template and inherited by every
 * fork, and each fork the server makes goes through the interpreter's fork
 * hooks, as os.fork() does. Each entry takes the GIL and gives it back;
 * a template, which has no other thread, keeps it from its first fork on
 * (see loader_after_fork_parent ()). */
#include "config.h"

#include "afork-python-private.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include "afork-error.h"
#include "afork-loader-private.h"
#include "afork-threads-private.h"

/* afork's own domain, named rather than linked: the server provides no
 * afork_error_quark () to its plugins. */
#define LOADER_AFORK_ERROR (g_quark_from_static_string ("afork-error-quark"))

G_DEFINE_QUARK (afork-python-error-quark, afork_python_error)

static gboolean started;
static gboolean ran_code;       /* Python code ran since the last gc.freeze () */
static GHashTable *functions;   /* name → PyObject * (a reference) */
static GPtrArray *required;     /* names of the modules required, char * */
static GPtrArray *retired;      /* PyObject *: what the table held, kept */
static PyGILState_STATE fork_gil;
static gboolean holding_gil;    /* a template, from its first fork on */
static PyObject *gc_freeze;     /* gc.freeze, before each fork that needs it */

static gboolean init_std_streams (gboolean own);

static gboolean
start_interpreter (GError **error)
{
  PyStatus status;
  PyConfig config;
  gboolean own = FALSE;
  gboolean ok;

  if (started)
    return TRUE;

  /* A process that has its own interpreter already (a fork of a Python
   * program) shares it. */
  if (!Py_IsInitialized ())
    {
      PyConfig_InitPythonConfig (&config);
      /* The server's signals stay the server's. */
      config.install_signal_handlers = 0;
      config.parse_argv = 0;
      /* site runs once the loader has made its standard streams (see
       * init_std_streams ()), so that what site runs (sitecustomize, .pth
       * files) sees those and keeps none of the ones they replace. */
      config.site_import = 0;
      /* The interpreter finds its standard library from the program it was
       * built with, whatever python3 comes first in PATH; PYTHONPATH and
       * PYTHONHOME are read from the environment as usual. */
      status = PyConfig_SetBytesString (&config, &config.program_name, AFORK_PYTHON_PROGRAM);
      if (!PyStatus_Exception (status))
        status = Py_InitializeFromConfig (&config);
      PyConfig_Clear (&config);
      own = TRUE;

      if (PyStatus_Exception (status))
        {
          g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                       /* TRANSLATORS: %s is Python's explanation */
                       _("The Python interpreter could not start: %s"),
                       status.err_msg ? status.err_msg : _("unknown error"));
          return FALSE;
        }
    }
  else
    PyGILState_Ensure ();

  ok = _afork_python_module_install ();
  if (ok)
    {
      PyObject *gc = PyImport_ImportModule ("gc");

      gc_freeze = gc != NULL ? PyObject_GetAttrString (gc, "freeze") : NULL;
      Py_XDECREF (gc);
      ok = gc_freeze != NULL;
    }
  ok = ok && init_std_streams (own);
  if (ok && own)
    {
      PyObject *site = PyImport_ImportModule ("site");
      PyObject *res = site != NULL ? PyObject_CallMethod (site, "main", NULL) : NULL;

      ok = res != NULL;
      Py_XDECREF (res);
      Py_XDECREF (site);
    }
  if (!ok)
    {
      g_autofree char *message = _afork_python_describe_error ();

      PyErr_Print ();
      g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                   _("The Python interpreter could not start: %s"), message);
    }

  /* From here on every entry takes the GIL and gives it back. */
  PyEval_SaveThread ();
  functions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  started = ok;
  ran_code = ok;

  return ok;
}

/* sys's dictionary, and the names of what flush_std_streams () uses. */
static PyObject *sys_dict;
static PyObject *flush_name;
static PyObject *stream_names[2];
/* In the loader's own interpreter: the stdout and stderr it made (NULL
 * where it left a stream as it was), and a list whose item i is True
 * when own_streams[i] has been written to since it was last flushed. */
static PyObject *own_streams[2];
static PyObject *written;

/* Makes sys.stdout and sys.stderr again, over the same descriptors and
 * with the same encoding, errors, newline and mode, as objects of
 * subclasses whose write () marks the stream written (the text stream and
 * its binary buffer alike), before and after it writes: a flush that
 * another thread runs in between clears the mark, and the write sets it
 * again. Line-buffered; unbuffered where they were (as PYTHONUNBUFFERED
 * asks). A stream of another kind is left as it is (None in streams). */
static const char streams_source[] =
  "import io, os, sys\n"
  "written = [False, False]\n"
  "def remake(old, i):\n"
  "    if type(old) is not io.TextIOWrapper:\n"
  "        return None\n"
  "    if type(old.buffer) is io.BufferedWriter:\n"
  "        unbuffered = False\n"
  "    elif type(old.buffer) is io.FileIO and old.write_through:\n"
  "        unbuffered = True\n"
  "    else:\n"
  "        return None\n"
  "    class MarkedBufferedWriter(io.BufferedWriter):\n"
  "        def write(self, b, /):\n"
  "            written[i] = True\n"
  "            try:\n"
  "                return super().write(b)\n"
  "            finally:\n"
  "                written[i] = True\n"
  "    class MarkedTextIOWrapper(io.TextIOWrapper):\n"
  "        def write(self, s, /):\n"
  "            written[i] = True\n"
  "            try:\n"
  "                return super().write(s)\n"
  "            finally:\n"
  "                written[i] = True\n"
  "    for cls in MarkedBufferedWriter, MarkedTextIOWrapper:\n"
  "        cls.__qualname__ = cls.__name__\n"
  "    old.flush()\n"
  "    encoding, errors, mode = old.encoding, old.errors, old.mode\n"
  "    buffer = old.detach()\n"
  "    if unbuffered:\n"
  "        new = MarkedTextIOWrapper(buffer, encoding=encoding, errors=errors, newline='\\n',\n"
  "                                  line_buffering=True, write_through=True)\n"
  "    else:\n"
  "        raw = buffer.detach()\n"
  "        try:\n"
  "            size = os.fstat(raw.fileno()).st_blksize\n"
  "        except OSError:\n"
  "            size = 0\n"
  "        if size <= 1:\n"
  "            size = io.DEFAULT_BUFFER_SIZE\n"
  "        new = MarkedTextIOWrapper(MarkedBufferedWriter(raw, size), encoding=encoding,\n"
  "                                  errors=errors, newline='\\n', line_buffering=True)\n"
  "    new.mode = mode\n"
  "    return new\n"
  "def remake_both():\n"
  "    out = remake(sys.stdout, 0)\n"
  "    if out is not None:\n"
  "        sys.stdout = sys.__stdout__ = out\n"
  "    err = remake(sys.stderr, 1)\n"
  "    if err is not None:\n"
  "        sys.stderr = sys.__stderr__ = err\n"
  "    return out, err\n"
  "streams = remake_both()\n";

/* Made once, in the template, before any fork: a fresh worker finds the
 * names interned and the method in the interpreter's type cache, as the
 * template left them, instead of making its own (each a write to a page
 * it shares with the template).
 *
 * In the loader's own interpreter, sys.stdout is line-buffered, as
 * sys.stderr is already: a worker that crashes, or is killed at its
 * time-out, loses at most an unfinished line, and workers that share an
 * output write whole lines. (Unbuffered, as with python3 -u, a write cut
 * short by a signal loses the rest without an error, and a print makes a
 * system call for each of its pieces.) Both streams are made again there
 * (streams_source), before site runs any code that could keep the old
 * ones, so that they mark their writes: the flush after an entry is
 * skipped for a stream nothing was written to, which spares a fresh
 * worker the pages of both (some 9 copied pages). */
static gboolean
init_std_streams (gboolean own)
{
  PyObject *sys_module = PyImport_AddModule ("sys");   /* borrowed */

  if (sys_module == NULL)
    return FALSE;
  sys_dict = Py_NewRef (PyModule_GetDict (sys_module));
  flush_name = PyUnicode_InternFromString ("flush");
  stream_names[0] = PyUnicode_InternFromString ("stdout");
  stream_names[1] = PyUnicode_InternFromString ("stderr");
  if (flush_name == NULL || stream_names[0] == NULL || stream_names[1] == NULL)
    return FALSE;

  if (own)
    {
      PyObject *globals = PyDict_New ();
      PyObject *module_name = PyUnicode_FromString ("afork");
      PyObject *code = NULL;
      PyObject *res = NULL;

      /* The classes' __module__ is afork, whose loader they belong to. */
      if (globals != NULL && module_name != NULL &&
          PyDict_SetItemString (globals, "__builtins__", PyEval_GetBuiltins ()) == 0 &&
          PyDict_SetItemString (globals, "__name__", module_name) == 0)
        code = Py_CompileString (streams_source, "<afork streams>", Py_file_input);
      if (code != NULL)
        res = PyEval_EvalCode (code, globals, globals);
      if (res != NULL)
        {
          PyObject *streams = PyDict_GetItemString (globals, "streams");   /* borrowed */
          PyObject *list = PyDict_GetItemString (globals, "written");      /* borrowed */

          if (streams != NULL && PyTuple_CheckExact (streams) && PyTuple_GET_SIZE (streams) == 2 &&
              list != NULL && PyList_CheckExact (list) && PyList_GET_SIZE (list) == 2)
            {
              written = Py_NewRef (list);
              for (guint i = 0; i < 2; i++)
                if (PyTuple_GET_ITEM (streams, i) != Py_None)
                  own_streams[i] = Py_NewRef (PyTuple_GET_ITEM (streams, i));
            }
        }
      else
        {
          /* Not expected; the streams sys names are flushed after each
           * entry all the same. */
          g_autofree char *message = _afork_python_describe_error ();

          g_warning (_("The Python loader could not make its standard streams: %s"), message);
        }
      Py_XDECREF (res);
      Py_XDECREF (code);
      Py_XDECREF (module_name);
      Py_XDECREF (globals);
      PyErr_Clear ();
    }

  return TRUE;
}

/* Calls @stream's flush (). FALSE if it raised; then *@hopeless (if not
 * NULL) is TRUE when the error was a ValueError (a closed or detached
 * stream, which no later flush mends). */
static gboolean
flush_stream (PyObject *stream,
              gboolean *hopeless)
{
  PyObject *res;

  Py_INCREF (stream);
  res = PyObject_CallMethodNoArgs (stream, flush_name);
  Py_DECREF (stream);
  if (res == NULL)
    {
      if (hopeless != NULL)
        *hopeless = PyErr_ExceptionMatches (PyExc_ValueError);
      PyErr_Clear ();
      return FALSE;
    }
  Py_DECREF (res);
  return TRUE;
}

/* TRUE when the interpreter has no thread but the one running. Only
 * reads. */
static gboolean
python_single_threaded (void)
{
  PyThreadState *head = PyInterpreterState_ThreadHead (PyInterpreterState_Get ());

  return head == NULL || PyThreadState_Next (head) == NULL;
}

/* Flushes sys.stdout and sys.stderr, after each entry: a fork must not
 * inherit Python's buffers (they would be written once per child), and a
 * process that ends with _exit () must not lose them.
 *
 * The streams sys names that are not the loader's own are flushed first,
 * each time (one may write into the loader's own). Then the loader's own
 * streams are flushed if they were written to, whether or not sys still
 * names them. The mark is cleared before the flush (a thread may write
 * while it runs), set again if the flush failed and may work later, and
 * cleared after it when no other thread could have written meanwhile (the
 * flush itself marks the buffer it writes to). */
static void
flush_std_streams (void)
{
  if (sys_dict == NULL)
    return;

  for (guint i = 0; i < G_N_ELEMENTS (stream_names); i++)
    {
      PyObject *stream = PyDict_GetItemWithError (sys_dict, stream_names[i]);   /* borrowed */

      if (stream == NULL || stream == Py_None)
        {
          PyErr_Clear ();
          continue;
        }
      if (stream == own_streams[0] || stream == own_streams[1])
        continue;
      flush_stream (stream, NULL);
    }

  for (guint i = 0; written != NULL && i < G_N_ELEMENTS (own_streams); i++)
    {
      gboolean flushed, hopeless = FALSE;

      if (own_streams[i] == NULL || PyList_GET_ITEM (written, i) != Py_True)
        continue;
      PyList_SetItem (written, i, Py_NewRef (Py_False));
      flushed = flush_stream (own_streams[i], &hopeless);
      if (!flushed)
        PyList_SetItem (written, i, Py_NewRef (hopeless ? Py_False : Py_True));
      else if (python_single_threaded ())
        PyList_SetItem (written, i, Py_NewRef (Py_False));
    }
}

static int system_exit_status (void);

/* Prints the raised exception's traceback to stderr and turns it into a
 * GError "Type: message" in the loader's domain. SystemExit ends the
 * process, as it does any Python program. */
static void
take_exception (GError **error)
{
  g_autofree char *message = NULL;

  if (PyErr_ExceptionMatches (PyExc_SystemExit))
    {
      int status = system_exit_status ();

      flush_std_streams ();
      fflush (NULL);
      _exit (status);
    }

  message = _afork_python_describe_error ();

  PyErr_Print ();
  flush_std_streams ();
  g_set_error_literal (error, AFORK_PYTHON_ERROR, AFORK_PYTHON_ERROR_EXCEPTION, message);
}


/* A template must stay single-threaded to fork safely: Python code run in
 * it that starts a thread is an error, as a threaded program asking to
 * become a template is. @what: the module imported, NULL for a call. */
static gboolean
check_single_threaded (const char  *what,
                       GError     **error)
{
  if (_afork_count_threads () <= 1)
    return TRUE;

  if (what != NULL)
    g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_THREADED,
                 /* TRANSLATORS: %s is a Python module name */
                 _("Python module “%s” started a thread in a template process, "
                   "which must stay single-threaded to fork safely"),
                 what);
  else
    g_set_error_literal (error, LOADER_AFORK_ERROR, AFORK_ERROR_THREADED,
                         _("A Python call function started a thread in a template "
                           "process, which must stay single-threaded to fork safely"));
  return FALSE;
}

static gboolean
loader_require (const char  *name,
                GError     **error)
{
  PyGILState_STATE gil;
  PyObject *module;
  gboolean ok = TRUE;

  if (!start_interpreter (error))
    return FALSE;

  gil = PyGILState_Ensure ();
  ran_code = TRUE;
  module = PyImport_ImportModule (name);
  if (module != NULL)
    {
      if (required == NULL)
        required = g_ptr_array_new_with_free_func (g_free);
      if (!g_ptr_array_find_with_equal_func (required, name, g_str_equal, NULL))
        g_ptr_array_add (required, g_strdup (name));
    }
  if (module == NULL)
    {
      g_autoptr(GError) exception = NULL;

      take_exception (&exception);
      g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                   /* TRANSLATORS: the first %s is a Python module name, the
                    * second the exception ("Type: message") */
                   _("Python module “%s” could not be imported: %s"), name,
                   exception->message);
      ok = FALSE;
    }
  Py_XDECREF (module);
  flush_std_streams ();
  PyGILState_Release (gil);

  return ok && check_single_threaded (name, error);
}

/* The module @name (a new reference): from sys.modules when the process
 * has it (a template imported it), which runs no Python code (the import
 * machinery would, and a fresh worker pays for every page that code
 * writes); imported otherwise, with *@imported set. */
static PyObject *
get_module (const char *name,
            gboolean   *imported)
{
  PyObject *key = PyUnicode_FromString (name);
  PyObject *module;

  if (key == NULL)
    return NULL;
  module = PyImport_GetModule (key);
  Py_DECREF (key);
  /* None: an import that sys.modules blocks, which the import reports. */
  if (module == Py_None)
    Py_CLEAR (module);
  else if (module != NULL || PyErr_Occurred ())
    return module;

  *imported = TRUE;
  return PyImport_ImportModule (name);
}

/* The attribute @name of @module (a new reference): from the module's
 * dictionary when it is there (a lookup that leaves the type cache
 * alone), else as any attribute (a module's __getattr__, a module object
 * of another type). */
static PyObject *
get_function (PyObject   *module,
              const char *name)
{
  PyObject *function = NULL;

  if (PyModule_CheckExact (module))
    {
      PyObject *key = PyUnicode_FromString (name);

      if (key == NULL)
        return NULL;
      function = PyDict_GetItemWithError (PyModule_GetDict (module), key);
      Py_DECREF (key);
      if (function != NULL)
        return Py_NewRef (function);
      if (PyErr_Occurred ())
        return NULL;
    }

  return PyObject_GetAttrString (module, name);
}

/* Imports the module part of "pkg.mod.function" and finds the function.
 * *@imported is set when Python code may have run (an import). */
static PyObject *
find_function (const char  *name,
               gboolean    *imported,
               GError     **error)
{
  const char *dot = strrchr (name, '.');
  g_autofree char *module_name = NULL;
  PyObject *module = NULL;
  PyObject *function = NULL;

  if (dot == NULL || dot == name || dot[1] == '\0')
    {
      g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
                   /* TRANSLATORS: %s is what the caller gave as a Python function name */
                   _("Python function name “%s” is not of the form module.function"), name);
      return NULL;
    }

  module_name = g_strndup (name, dot - name);
  module = get_module (module_name, imported);
  if (module != NULL)
    function = get_function (module, dot + 1);
  Py_XDECREF (module);

  if (function == NULL)
    {
      g_autofree char *message = _afork_python_describe_error ();

      PyErr_Clear ();
      g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
                   /* TRANSLATORS: the first %s is a Python function name, the
                    * second the exception ("Type: message") */
                   _("Python function “%s” not found: %s"), name, message);
      return NULL;
    }

  if (!PyCallable_Check (function))
    {
      g_set_error (error, LOADER_AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
                   /* TRANSLATORS: %s is a Python function name */
                   _("Python name “%s” is not a function"), name);
      Py_DECREF (function);
      return NULL;
    }

  return function;
}

static gpointer
loader_resolve (const char  *name,
                GError     **error)
{
  PyGILState_STATE gil;
  PyObject *function;
  gboolean imported = FALSE;

  if (!start_interpreter (error))
    return NULL;

  function = g_hash_table_lookup (functions, name);
  if (function != NULL)
    return function;

  gil = PyGILState_Ensure ();
  function = find_function (name, &imported, error);
  if (imported)
    {
      ran_code = TRUE;
      flush_std_streams ();
    }
  PyGILState_Release (gil);

  if (function != NULL)
    g_hash_table_insert (functions, g_strdup (name), function);

  return function;
}

/* The exit status of a run function that raised SystemExit, as Python's
 * own: None 0, an int that int, anything else printed and 1. */
static int
system_exit_status (void)
{
  PyObject *type = NULL, *value = NULL, *traceback = NULL;
  PyObject *code = NULL;
  int status = 1;

  PyErr_Fetch (&type, &value, &traceback);
  PyErr_NormalizeException (&type, &value, &traceback);
  if (value != NULL)
    code = PyObject_GetAttrString (value, "code");
  PyErr_Clear ();

  if (code == NULL || code == Py_None)
    status = 0;
  else if (PyLong_Check (code))
    status = (int) PyLong_AsLong (code);
  else
    {
      PyObject *text = PyObject_Str (code);
      const char *str = text ? PyUnicode_AsUTF8 (text) : NULL;

      if (str != NULL)
        PySys_WriteStderr ("%s\n", str);
      Py_XDECREF (text);
    }
  PyErr_Clear ();

  Py_XDECREF (code);
  Py_XDECREF (type);
  Py_XDECREF (value);
  Py_XDECREF (traceback);

  return status;
}

/* Runs f(child). The process ends here, with Python's buffers flushed
 * (atexit handlers do not run, as in any forked Python child that ends
 * with os._exit ()): 0 on return, 1 after an uncaught exception (its
 * traceback on stderr), the code of a SystemExit. */
static void
loader_run (gpointer    handle,
            AforkChild *child)
{
  PyObject *child_obj;
  PyObject *res = NULL;
  int status = 0;

  PyGILState_Ensure ();

  child_obj = _afork_python_child_new (child, TRUE);
  if (child_obj != NULL)
    res = PyObject_CallOneArg (handle, child_obj);

  if (res == NULL)
    {
      if (PyErr_ExceptionMatches (PyExc_SystemExit))
        status = system_exit_status ();
      else
        {
          PyErr_Print ();
          status = 1;
        }
    }

  Py_XDECREF (res);
  Py_XDECREF (child_obj);
  flush_std_streams ();
  fflush (NULL);
  _exit (status);
}

static gboolean
loader_call (gpointer             handle,
             AforkChild          *child,
             const char * const  *args,
             GError             **error)
{
  PyGILState_STATE gil = PyGILState_Ensure ();
  PyObject *call_args = NULL;
  PyObject *res = NULL;
  guint n = args != NULL ? g_strv_length ((char **) args) : 0;
  gboolean ok;

  ran_code = TRUE;

  call_args = PyTuple_New (n + 1);
  if (call_args != NULL)
    {
      PyObject *child_obj = _afork_python_child_new (child, FALSE);

      if (child_obj == NULL)
        Py_CLEAR (call_args);
      else
        PyTuple_SET_ITEM (call_args, 0, child_obj);
    }
  for (guint i = 0; call_args != NULL && i < n; i++)
    {
      PyObject *arg = _afork_python_string_new (args[i], strlen (args[i]));

      if (arg == NULL)
        Py_CLEAR (call_args);
      else
        PyTuple_SET_ITEM (call_args, i + 1, arg);
    }

  if (call_args != NULL)
    res = PyObject_Call (handle, call_args, NULL);

  ok = res != NULL;
  if (!ok)
    take_exception (error);

  Py_XDECREF (res);
  Py_XDECREF (call_args);
  flush_std_streams ();
  PyGILState_Release (gil);

  return ok && check_single_threaded (NULL, error);
}

static GVariant *
loader_pool_call (gpointer     handle,
                  AforkChild  *child,
                  GVariant    *parameters,
                  GError     **error)
{
  PyGILState_STATE gil = PyGILState_Ensure ();
  PyObject *call_args = NULL;
  PyObject *res = NULL;
  GVariant *reply = NULL;

  ran_code = TRUE;

  if (parameters == NULL || !g_variant_is_of_type (parameters, G_VARIANT_TYPE_TUPLE))
    call_args = PyTuple_New (0);
  else
    call_args = _afork_python_from_variant (parameters, child);

  if (call_args != NULL)
    res = PyObject_Call (handle, call_args, NULL);

  if (res != NULL && res != Py_None)
    reply = _afork_python_to_variant (res, NULL, child);

  if (res == NULL || (res != Py_None && reply == NULL))
    take_exception (error);

  Py_XDECREF (res);
  Py_XDECREF (call_args);
  flush_std_streams ();
  PyGILState_Release (gil);

  return reply;
}

/* Adds the functions defined in @module_name (a module required) to the
 * table of functions, under the names they are looked up by. */
static void
prime_module_functions (const char *module_name)
{
  PyObject *module = PyDict_GetItemString (PyImport_GetModuleDict (), module_name);   /* borrowed */
  PyObject *key, *value;
  Py_ssize_t pos = 0;

  /* A worker reads the dictionary of a module object of the module type
   * only; others it asks for the attribute, which the template must not
   * answer in advance. */
  if (module == NULL || !PyModule_CheckExact (module))
    return;

  while (PyDict_Next (PyModule_GetDict (module), &pos, &key, &value))
    {
      PyObject *defined_in;
      const char *defined_in_name;
      const char *function_name;
      char *name;

      if (!PyUnicode_Check (key) || !PyFunction_Check (value))
        continue;
      /* Not those it imported from elsewhere. */
      defined_in = PyFunction_GetModule (value);   /* borrowed */
      if (defined_in == NULL || !PyUnicode_Check (defined_in))
        continue;
      defined_in_name = PyUnicode_AsUTF8 (defined_in);
      function_name = PyUnicode_AsUTF8 (key);
      if (defined_in_name == NULL || function_name == NULL)
        {
          PyErr_Clear ();
          continue;
        }
      /* A name with a dot would be split elsewhere by a worker. */
      if (strcmp (defined_in_name, module_name) != 0 || strchr (function_name, '.') != NULL)
        continue;

      name = g_strconcat (module_name, ".", function_name, NULL);
      if (g_hash_table_contains (functions, name))
        g_free (name);
      else
        g_hash_table_insert (functions, name, Py_NewRef (value));
    }
}

/* The table of functions a child inherits. Made again, in a template,
 * before a fork that follows Python code (so that it sees what a call or
 * require changed): the functions defined in the modules the template
 * required, each under its name (module.function), found then as a
 * worker would find it. A worker forked for one call then takes its
 * function from the table instead of looking it up in sys.modules and
 * the module's dictionary, each page of which it would copy (the lookup
 * takes references): 10 % more fresh workers a second here. A name the
 * table does not have is looked up in the child, as before. */
static void
prime_functions (void)
{
  GHashTableIter iter;
  gpointer value;

  /* What the table held stays alive: a handle resolve () gave out is
   * good for the life of the process, and dropping the last reference to
   * a function could run Python code (a __del__) just before a fork. */
  if (retired == NULL)
    retired = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, functions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_ptr_array_add (retired, value);
      g_hash_table_iter_remove (&iter);
    }

  for (guint i = 0; required != NULL && i < required->len; i++)
    prime_module_functions (required->pdata[i]);
}

/* gc.freeze () before a fork when Python code has run since the last
 * one, as Python's documentation advises for a process that forks
 * without exec: the objects the child inherits go to the permanent
 * generation, so that its collections never walk them (a collection
 * writes to every object it walks, and each such page, shared with the
 * template, would be copied). Done in the template, it costs a fork
 * nothing when the template has run no Python code since its last one;
 * done in each child, it cost a copied page or two in every child. */
static void
freeze_inherited_objects (void)
{
  PyObject *res;

  if (!ran_code)
    return;

  prime_functions ();
  res = PyObject_CallNoArgs (gc_freeze);
  Py_XDECREF (res);
  PyErr_Clear ();
  ran_code = FALSE;
}

/* The interpreter's own fork protocol, as os.fork () follows it: the GIL
 * and the import lock held across the fork, os.register_at_fork ()
 * handlers run (random reseeds itself in the child), the child's state
 * made that of a single-threaded process. */
static void
loader_before_fork (void)
{
  if (!started)
    return;

  /* No flush here: every entry flushed Python's streams on its way out,
   * and nothing else runs Python code in a template (it has no thread). */
  /* Written once: each later fork would copy the page for the same
   * value. */
  if (!holding_gil)
    {
      fork_gil = PyGILState_Ensure ();
      holding_gil = TRUE;
    }
  freeze_inherited_objects ();
  PyOS_BeforeFork ();
}

static void
loader_after_fork_parent (void)
{
  if (!started)
    return;

  /* The template keeps the GIL: releasing it would write to pages it now
   * shares with the child (each then copied, at some 25 µs), and a
   * template has no other thread to give it to. */
  PyOS_AfterFork_Parent ();
}

static void
loader_after_fork_child (void)
{
  if (!started)
    return;

  PyOS_AfterFork_Child ();
  /* A child gives it back: threads its functions start run between
   * calls. */
  PyGILState_Release (fork_gil);
  holding_gil = FALSE;
}

static const AforkLoader python_loader = {
  .prefix = "python",
  .require = loader_require,
  .resolve = loader_resolve,
  .run = loader_run,
  .call = loader_call,
  .pool_call = loader_pool_call,
  .before_fork = loader_before_fork,
  .after_fork_parent = loader_after_fork_parent,
  .after_fork_child = loader_after_fork_child,
};

G_MODULE_EXPORT const AforkLoader *afork_loader_get (void);

const AforkLoader *
afork_loader_get (void)
{
  return &python_loader;
}
