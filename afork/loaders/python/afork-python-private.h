/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Python loader's parts: the `afork` module it gives Python code, and
 * the conversions between GVariant and Python values. Every function here
 * is called with the GIL held and reports failure as a Python exception. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <glib.h>

#include "afork-child.h"

G_BEGIN_DECLS

#define AFORK_PYTHON_ERROR (afork_python_error_quark ())

/* The loader's own error domain, "afork-python-error-quark". */
typedef enum
{
  AFORK_PYTHON_ERROR_EXCEPTION,   /* the function raised: "Type: message" */
} AforkPythonError;

GQuark     afork_python_error_quark       (void);

/* Creates the `afork` module and puts it in sys.modules. */
gboolean   _afork_python_module_install   (void);

/* A new afork.Child for @child: args in order (str, or bytes when not
 * UTF-8; descriptors as int), and, for a run function (@run), the socket
 * as a socket.socket that owns the descriptor. */
PyObject  *_afork_python_child_new        (AforkChild   *child,
                                           gboolean      run);

/* str when @data is UTF-8, bytes otherwise. */
PyObject  *_afork_python_string_new       (const char   *data,
                                           gsize         len);

/* GVariant → Python. Descriptors (h) become the call's descriptor, when
 * @child is a pool worker's, else the handle itself. */
PyObject  *_afork_python_from_variant     (GVariant     *value,
                                           AforkChild   *child);

/* Python → GVariant, of the type the value suggests, or of @type (a
 * definite type, may be NULL). Returns a floating reference. */
GVariant  *_afork_python_to_variant       (PyObject            *object,
                                           const GVariantType  *type,
                                           AforkChild          *child);

/* "Type: message" of the raised exception, which stays raised. */
char      *_afork_python_describe_error   (void);

G_END_DECLS
