/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GVariant ↔ Python. Incoming values become the plain Python value of
 * their type (bytes for ay, list for arrays, dict for dictionaries, tuple
 * for tuples, the contents of a v, None for an empty maybe). Outgoing
 * values take the type they suggest (bool b, int x — t when only that
 * fits —, float d, str s, bytes ay, tuple, list a…, dict a{…}); a list or
 * dict whose members differ in type becomes av / a{?v}. afork.Variant
 * gives an exact type, afork.fd a descriptor, and a GLib.Variant is taken
 * as it is. */
#include "config.h"

#include "afork-python-private.h"

#include <glib/gi18n-lib.h>

#include <string.h>
#include <unistd.h>

/* PyErr_Format () takes ASCII formats only: messages (translated ones
 * too) are formatted by GLib, in UTF-8. */
G_GNUC_PRINTF (2, 3) static void
raise_error (PyObject   *type,
             const char *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  PyErr_SetString (type, message);
}

static PyObject *
handle_from_variant (gint32      handle,
                     AforkChild *child)
{
  if (child != NULL)
    return PyLong_FromLong (afork_child_get_call_fd (child, handle));
  return PyLong_FromLong (handle);
}

/* Fills @seq, a new list or tuple as long as @value has children, with
 * them converted; NULL (with a Python exception) when @seq is NULL or a
 * child cannot be converted. */
static PyObject *
fill_sequence (PyObject   *seq,
               GVariant   *value,
               AforkChild *child)
{
  for (gsize i = 0; seq != NULL && i < g_variant_n_children (value); i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (value, i);
      PyObject *pi = _afork_python_from_variant (item, child);

      if (pi == NULL)
        Py_CLEAR (seq);
      else if (PyTuple_Check (seq))
        PyTuple_SET_ITEM (seq, (Py_ssize_t) i, pi);
      else
        PyList_SET_ITEM (seq, (Py_ssize_t) i, pi);
    }

  return seq;
}

PyObject *
_afork_python_from_variant (GVariant   *value,
                            AforkChild *child)
{
  const GVariantType *type = g_variant_get_type (value);
  PyObject *result = NULL;

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return PyBool_FromLong (g_variant_get_boolean (value));
    case G_VARIANT_CLASS_BYTE:
      return PyLong_FromLong (g_variant_get_byte (value));
    case G_VARIANT_CLASS_INT16:
      return PyLong_FromLong (g_variant_get_int16 (value));
    case G_VARIANT_CLASS_UINT16:
      return PyLong_FromLong (g_variant_get_uint16 (value));
    case G_VARIANT_CLASS_INT32:
      return PyLong_FromLong (g_variant_get_int32 (value));
    case G_VARIANT_CLASS_UINT32:
      return PyLong_FromUnsignedLong (g_variant_get_uint32 (value));
    case G_VARIANT_CLASS_INT64:
      return PyLong_FromLongLong (g_variant_get_int64 (value));
    case G_VARIANT_CLASS_UINT64:
      return PyLong_FromUnsignedLongLong (g_variant_get_uint64 (value));
    case G_VARIANT_CLASS_HANDLE:
      return handle_from_variant (g_variant_get_handle (value), child);
    case G_VARIANT_CLASS_DOUBLE:
      return PyFloat_FromDouble (g_variant_get_double (value));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize len = 0;
        const char *str = g_variant_get_string (value, &len);
        return PyUnicode_DecodeUTF8 (str, (Py_ssize_t) len, "surrogateescape");
      }
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);
        return _afork_python_from_variant (inner, child);
      }
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);
        if (inner == NULL)
          Py_RETURN_NONE;
        return _afork_python_from_variant (inner, child);
      }
    case G_VARIANT_CLASS_ARRAY:
      {
        gsize n = g_variant_n_children (value);

        if (g_variant_type_equal (type, G_VARIANT_TYPE_BYTESTRING))
          {
            gsize len = 0;
            const guint8 *data = g_variant_get_fixed_array (value, &len, 1);
            return PyBytes_FromStringAndSize ((const char *) data, (Py_ssize_t) len);
          }

        if (g_variant_type_is_dict_entry (g_variant_type_element (type)))
          {
            result = PyDict_New ();
            for (gsize i = 0; result != NULL && i < n; i++)
              {
                g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
                g_autoptr(GVariant) k = g_variant_get_child_value (entry, 0);
                g_autoptr(GVariant) v = g_variant_get_child_value (entry, 1);
                PyObject *pk = _afork_python_from_variant (k, child);
                PyObject *pv = pk ? _afork_python_from_variant (v, child) : NULL;

                if (pv == NULL || PyDict_SetItem (result, pk, pv) < 0)
                  Py_CLEAR (result);
                Py_XDECREF (pk);
                Py_XDECREF (pv);
              }
            return result;
          }

        return fill_sequence (PyList_New ((Py_ssize_t) n), value, child);
      }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
      return fill_sequence (PyTuple_New ((Py_ssize_t) g_variant_n_children (value)), value, child);
    default:
      raise_error (PyExc_TypeError, _("cannot convert a GVariant of type %s"),
                    g_variant_get_type_string (value));
      return NULL;
    }
}

/* Python → GVariant ----------------------------------------------------- */

/* The afork module's classes, looked up once (the process keeps the
 * module for its life). */
static PyObject *
afork_class (const char *name)
{
  static PyObject *variant_class, *fd_class;
  PyObject **slot = g_str_equal (name, "Variant") ? &variant_class : &fd_class;

  if (*slot == NULL)
    {
      PyObject *module = PyImport_AddModule ("afork");   /* borrowed */

      if (module != NULL)
        *slot = PyObject_GetAttrString (module, name);
    }
  return *slot;
}

/* Whether @object is one of the types converted by value, never a wrapper. */
static gboolean
is_plain (PyObject *object)
{
  return PyLong_CheckExact (object) || PyUnicode_CheckExact (object) ||
         PyFloat_CheckExact (object) || PyBool_Check (object) || PyTuple_CheckExact (object) ||
         PyList_CheckExact (object) || PyDict_CheckExact (object) || PyBytes_CheckExact (object) ||
         object == Py_None;
}

static gboolean
is_instance_of (PyObject   *object,
                const char *class_name)
{
  PyObject *cls;
  int res;

  if (is_plain (object))
    return FALSE;
  cls = afork_class (class_name);
  if (cls == NULL)
    {
      PyErr_Clear ();
      return FALSE;
    }
  res = PyObject_IsInstance (object, cls);
  if (res < 0)
    PyErr_Clear ();
  return res > 0;
}

/* A GLib.Variant from PyGObject, recognised without importing gi. */
static gboolean
is_glib_variant (PyObject *object)
{
  PyTypeObject *tp = Py_TYPE (object);

  if (is_plain (object))
    return FALSE;

  for (Py_ssize_t i = 0; tp->tp_mro != NULL && i < PyTuple_GET_SIZE (tp->tp_mro); i++)
    {
      PyTypeObject *base = (PyTypeObject *) PyTuple_GET_ITEM (tp->tp_mro, i);
      PyObject *module = PyObject_GetAttrString ((PyObject *) base, "__module__");
      gboolean match = FALSE;

      if (module != NULL && PyUnicode_Check (module))
        {
          const char *m = PyUnicode_AsUTF8 (module);
          match = g_str_equal (base->tp_name, "Variant") && m != NULL &&
                  (g_str_equal (m, "gi.repository.GLib") || g_str_equal (m, "gi.overrides.GLib"));
        }
      Py_XDECREF (module);
      PyErr_Clear ();
      if (match)
        return TRUE;
    }

  return FALSE;
}

/* Text of a PyGObject GLib.Variant, parsed back: its exact type. */
static GVariant *
from_glib_variant (PyObject *object)
{
  PyObject *type_string = PyObject_CallMethod (object, "get_type_string", NULL);
  PyObject *text = type_string ? PyObject_CallMethod (object, "print_", "O", Py_False) : NULL;
  const char *ts, *tx;
  GVariant *result = NULL;
  g_autoptr(GError) error = NULL;

  if (text != NULL && (ts = PyUnicode_AsUTF8 (type_string)) != NULL &&
      (tx = PyUnicode_AsUTF8 (text)) != NULL)
    {
      result = g_variant_parse (G_VARIANT_TYPE (ts), tx, NULL, NULL, &error);
      if (result == NULL)
        raise_error (PyExc_ValueError, _("cannot take this GLib.Variant: %s"), error->message);
    }

  Py_XDECREF (type_string);
  Py_XDECREF (text);
  return result;
}

static GVariant *
fd_to_variant (PyObject   *object,
               AforkChild *child)
{
  PyObject *fd_obj = PyObject_GetAttrString (object, "fd");
  PyObject *close_obj = fd_obj ? PyObject_GetAttrString (object, "close") : NULL;
  long fd = fd_obj ? PyLong_AsLong (fd_obj) : -1;
  gboolean close_it = close_obj != NULL && PyObject_IsTrue (close_obj) > 0;
  gint32 handle = -1;

  Py_XDECREF (fd_obj);
  Py_XDECREF (close_obj);
  if (PyErr_Occurred ())
    return NULL;

  if (child != NULL)
    handle = afork_child_add_reply_fd (child, (int) fd);
  if (handle < 0)
    {
      raise_error (PyExc_ValueError,
                    _("descriptor %ld cannot be returned (not open, or not in a pool call)"), fd);
      return NULL;
    }
  if (close_it)
    close ((int) fd);

  return g_variant_new_handle (handle);
}

static GVariant *to_variant_typed (PyObject           *object,
                                   const GVariantType *type,
                                   AforkChild         *child);

static GVariant *
variant_wrapper_to_variant (PyObject   *object,
                            AforkChild *child)
{
  PyObject *ts_obj = PyObject_GetAttrString (object, "type_string");
  PyObject *value = ts_obj ? PyObject_GetAttrString (object, "value") : NULL;
  const char *ts = value && PyUnicode_Check (ts_obj) ? PyUnicode_AsUTF8 (ts_obj) : NULL;
  GVariant *result = NULL;

  if (value != NULL && ts == NULL && !PyErr_Occurred ())
    PyErr_SetString (PyExc_TypeError, _("afork.Variant: the type must be a str"));
  else if (ts != NULL && (!g_variant_type_string_is_valid (ts) ||
                          !g_variant_type_is_definite (G_VARIANT_TYPE (ts))))
    raise_error (PyExc_ValueError, _("afork.Variant: “%s” is not a definite GVariant type"), ts);
  else if (ts != NULL)
    result = to_variant_typed (value, G_VARIANT_TYPE (ts), child);

  Py_XDECREF (ts_obj);
  Py_XDECREF (value);
  return result;
}

/* Sequence items, or NULL with an exception. */
static PyObject *
as_fast_sequence (PyObject   *object,
                  const char *what)
{
  if (PyUnicode_Check (object) || PyBytes_Check (object) || PyDict_Check (object))
    {
      raise_error (PyExc_TypeError, _("cannot convert a %s to %s"),
                    Py_TYPE (object)->tp_name, what);
      return NULL;
    }
  return PySequence_Fast (object, what);
}

static GVariant *
to_variant_typed (PyObject           *object,
                  const GVariantType *type,
                  AforkChild         *child)
{
  const char *ts = g_variant_type_peek_string (type);
  g_autofree char *type_string = g_variant_type_dup_string (type);

  if (is_instance_of (object, "Variant") || is_glib_variant (object))
    {
      GVariant *inner = _afork_python_to_variant (object, NULL, child);

      if (inner != NULL && !g_variant_is_of_type (inner, type))
        {
          raise_error (PyExc_TypeError, _("a value of type %s where %s is expected"),
                        g_variant_get_type_string (inner), type_string);
          g_variant_unref (g_variant_ref_sink (inner));
          return NULL;
        }
      return inner;
    }

  switch (ts[0])
    {
    case 'b':
      {
        int truth = PyObject_IsTrue (object);
        return truth < 0 ? NULL : g_variant_new_boolean (truth);
      }
    case 'y': case 'n': case 'q': case 'i': case 'u': case 'x':
      {
        long long v;
        long long lo = 0, hi = 0;

        if (!PyLong_Check (object))
          {
            raise_error (PyExc_TypeError, _("an int is needed for type %s, not %s"),
                          type_string, Py_TYPE (object)->tp_name);
            return NULL;
          }
        v = PyLong_AsLongLong (object);
        if (v == -1 && PyErr_Occurred ())
          return NULL;
        switch (ts[0])
          {
          case 'y': lo = 0; hi = G_MAXUINT8; break;
          case 'n': lo = G_MININT16; hi = G_MAXINT16; break;
          case 'q': lo = 0; hi = G_MAXUINT16; break;
          case 'i': lo = G_MININT32; hi = G_MAXINT32; break;
          case 'u': lo = 0; hi = G_MAXUINT32; break;
          default: lo = G_MININT64; hi = G_MAXINT64; break;
          }
        if (v < lo || v > hi)
          {
            raise_error (PyExc_OverflowError, _("%lld does not fit in type %s"), v, type_string);
            return NULL;
          }
        switch (ts[0])
          {
          case 'y': return g_variant_new_byte ((guint8) v);
          case 'n': return g_variant_new_int16 ((gint16) v);
          case 'q': return g_variant_new_uint16 ((guint16) v);
          case 'i': return g_variant_new_int32 ((gint32) v);
          case 'u': return g_variant_new_uint32 ((guint32) v);
          default: return g_variant_new_int64 ((gint64) v);
          }
      }
    case 't':
      {
        unsigned long long v;

        if (!PyLong_Check (object))
          {
            raise_error (PyExc_TypeError, _("an int is needed for type t, not %s"),
                          Py_TYPE (object)->tp_name);
            return NULL;
          }
        v = PyLong_AsUnsignedLongLong (object);
        if (v == (unsigned long long) -1 && PyErr_Occurred ())
          return NULL;
        return g_variant_new_uint64 (v);
      }
    case 'h':
      if (is_instance_of (object, "FD"))
        return fd_to_variant (object, child);
      if (PyLong_Check (object))
        {
          PyObject *fd = PyObject_CallMethod (PyImport_AddModule ("afork"), "fd", "O", object);
          GVariant *result = fd ? fd_to_variant (fd, child) : NULL;
          Py_XDECREF (fd);
          return result;
        }
      raise_error (PyExc_TypeError, _("a descriptor (afork.fd or int) is needed for type h, not %s"),
                    Py_TYPE (object)->tp_name);
      return NULL;
    case 'd':
      {
        double d = PyFloat_AsDouble (object);
        return d == -1.0 && PyErr_Occurred () ? NULL : g_variant_new_double (d);
      }
    case 's': case 'o': case 'g':
      {
        const char *str;
        Py_ssize_t len = 0;

        if (!PyUnicode_Check (object))
          {
            raise_error (PyExc_TypeError, _("a str is needed for type %s, not %s"),
                          type_string, Py_TYPE (object)->tp_name);
            return NULL;
          }
        str = PyUnicode_AsUTF8AndSize (object, &len);
        if (str == NULL)
          return NULL;
        if (strlen (str) != (size_t) len)
          {
            raise_error (PyExc_ValueError, _("a str with a NUL character cannot be of type %s"),
                          type_string);
            return NULL;
          }
        if ((ts[0] == 'o' && !g_variant_is_object_path (str)) ||
            (ts[0] == 'g' && !g_variant_is_signature (str)))
          {
            raise_error (PyExc_ValueError, _("“%s” is not a valid value of type %s"), str, type_string);
            return NULL;
          }
        return ts[0] == 's' ? g_variant_new_string (str) :
               ts[0] == 'o' ? g_variant_new_object_path (str) : g_variant_new_signature (str);
      }
    case 'v':
      {
        GVariant *inner = _afork_python_to_variant (object, NULL, child);
        return inner ? g_variant_new_variant (inner) : NULL;
      }
    case 'm':
      {
        const GVariantType *element = g_variant_type_element (type);
        GVariant *inner;

        if (object == Py_None)
          return g_variant_new_maybe (element, NULL);
        inner = to_variant_typed (object, element, child);
        return inner ? g_variant_new_maybe (NULL, inner) : NULL;
      }
    case 'a':
      {
        const GVariantType *element = g_variant_type_element (type);
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
        PyObject *items;

        if (ts[1] == 'y' && PyObject_CheckBuffer (object))
          {
            Py_buffer view;
            GVariant *result;

            if (PyObject_GetBuffer (object, &view, PyBUF_SIMPLE) < 0)
              return NULL;
            result = g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, view.buf, view.len, 1);
            PyBuffer_Release (&view);
            return result;
          }

        if (g_variant_type_is_dict_entry (element))
          {
            const GVariantType *kt = g_variant_type_key (element);
            const GVariantType *vt = g_variant_type_value (element);
            PyObject *key, *value;
            Py_ssize_t pos = 0;

            if (!PyDict_Check (object))
              {
                raise_error (PyExc_TypeError, _("a dict is needed for type %s, not %s"),
                              type_string, Py_TYPE (object)->tp_name);
                return NULL;
              }
            while (PyDict_Next (object, &pos, &key, &value))
              {
                GVariant *k = to_variant_typed (key, kt, child);
                GVariant *v = k ? to_variant_typed (value, vt, child) : NULL;

                if (v == NULL)
                  {
                    if (k != NULL)
                      g_variant_unref (g_variant_ref_sink (k));
                    return NULL;
                  }
                g_ptr_array_add (children, g_variant_ref_sink (g_variant_new_dict_entry (k, v)));
              }
            return g_variant_new_array (element, (GVariant **) children->pdata, children->len);
          }

        items = as_fast_sequence (object, type_string);
        if (items == NULL)
          return NULL;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE (items); i++)
          {
            GVariant *item = to_variant_typed (PySequence_Fast_GET_ITEM (items, i), element, child);

            if (item == NULL)
              {
                Py_DECREF (items);
                return NULL;
              }
            g_ptr_array_add (children, g_variant_ref_sink (item));
          }
        Py_DECREF (items);
        return g_variant_new_array (element, (GVariant **) children->pdata, children->len);
      }
    case '(':
    case '{':
      {
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
        const GVariantType *member = g_variant_type_first (type);
        PyObject *items = as_fast_sequence (object, type_string);
        Py_ssize_t n;

        if (items == NULL)
          return NULL;
        n = PySequence_Fast_GET_SIZE (items);
        if ((gsize) n != g_variant_type_n_items (type))
          {
            raise_error (PyExc_ValueError, _("%zd values where type %s has %zu"),
                          n, type_string, g_variant_type_n_items (type));
            Py_DECREF (items);
            return NULL;
          }
        for (Py_ssize_t i = 0; i < n; i++, member = g_variant_type_next (member))
          {
            GVariant *item = to_variant_typed (PySequence_Fast_GET_ITEM (items, i), member, child);

            if (item == NULL)
              {
                Py_DECREF (items);
                return NULL;
              }
            g_ptr_array_add (children, g_variant_ref_sink (item));
          }
        Py_DECREF (items);
        if (ts[0] == '{')
          return g_variant_new_dict_entry (children->pdata[0], children->pdata[1]);
        return g_variant_new_tuple ((GVariant **) children->pdata, children->len);
      }
    default:
      raise_error (PyExc_TypeError, _("cannot convert to type %s"), type_string);
      return NULL;
    }
}

/* Builds an array of @children (sunk references) of one type, or an av /
 * a{?v} when their types differ; of element type @empty_type when empty. */
static GVariant *
homogeneous_array (GPtrArray  *children,
                   const char *empty_type)
{
  const GVariantType *first;
  gboolean same = TRUE;

  if (children->len == 0)
    return g_variant_new_array (G_VARIANT_TYPE (empty_type), NULL, 0);

  first = g_variant_get_type (children->pdata[0]);
  for (guint i = 1; same && i < children->len; i++)
    same = g_variant_type_equal (first, g_variant_get_type (children->pdata[i]));

  if (!same)
    for (guint i = 0; i < children->len; i++)
      {
        GVariant *boxed = g_variant_ref_sink (g_variant_new_variant (children->pdata[i]));
        g_variant_unref (children->pdata[i]);
        children->pdata[i] = boxed;
      }

  return g_variant_new_array (NULL, (GVariant **) children->pdata, children->len);
}

GVariant *
_afork_python_to_variant (PyObject           *object,
                          const GVariantType *type,
                          AforkChild         *child)
{
  if (type != NULL)
    return to_variant_typed (object, type, child);

  if (PyBool_Check (object))
    return g_variant_new_boolean (object == Py_True);

  if (PyLong_Check (object))
    {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow (object, &overflow);

      if (overflow == 0)
        return v == -1 && PyErr_Occurred () ? NULL : g_variant_new_int64 (v);
      if (overflow > 0)
        {
          unsigned long long u = PyLong_AsUnsignedLongLong (object);
          return u == (unsigned long long) -1 && PyErr_Occurred () ? NULL : g_variant_new_uint64 (u);
        }
      PyErr_SetString (PyExc_OverflowError, _("an int below the range of a GVariant int64"));
      return NULL;
    }

  if (PyFloat_Check (object))
    return g_variant_new_double (PyFloat_AS_DOUBLE (object));

  if (PyUnicode_Check (object))
    return to_variant_typed (object, G_VARIANT_TYPE_STRING, child);

  if (PyBytes_Check (object) || PyByteArray_Check (object) || PyMemoryView_Check (object))
    return to_variant_typed (object, G_VARIANT_TYPE_BYTESTRING, child);

  if (PyTuple_Check (object))
    {
      g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);

      for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE (object); i++)
        {
          GVariant *item = _afork_python_to_variant (PyTuple_GET_ITEM (object, i), NULL, child);
          if (item == NULL)
            return NULL;
          g_ptr_array_add (children, g_variant_ref_sink (item));
        }
      return g_variant_new_tuple ((GVariant **) children->pdata, children->len);
    }

  if (PyList_Check (object))
    {
      g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);

      for (Py_ssize_t i = 0; i < PyList_GET_SIZE (object); i++)
        {
          GVariant *item = _afork_python_to_variant (PyList_GET_ITEM (object, i), NULL, child);
          if (item == NULL)
            return NULL;
          g_ptr_array_add (children, g_variant_ref_sink (item));
        }
      return homogeneous_array (children, "v");
    }

  if (PyDict_Check (object))
    {
      g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      PyObject *key, *value;
      Py_ssize_t pos = 0;
      gboolean same = TRUE;

      if (PyDict_GET_SIZE (object) == 0)
        return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);

      while (PyDict_Next (object, &pos, &key, &value))
        {
          GVariant *k = _afork_python_to_variant (key, NULL, child);
          GVariant *v = k ? _afork_python_to_variant (value, NULL, child) : NULL;

          if (k != NULL)
            g_ptr_array_add (keys, g_variant_ref_sink (k));
          if (v == NULL)
            return NULL;
          if (!g_variant_type_is_basic (g_variant_get_type (k)))
            {
              raise_error (PyExc_TypeError, _("a dict key of type %s cannot be a GVariant key"),
                            g_variant_get_type_string (k));
              g_variant_unref (g_variant_ref_sink (v));
              return NULL;
            }
          g_ptr_array_add (values, g_variant_ref_sink (v));
        }

      for (guint i = 1; i < keys->len; i++)
        if (!g_variant_type_equal (g_variant_get_type (keys->pdata[0]),
                                   g_variant_get_type (keys->pdata[i])))
          {
            PyErr_SetString (PyExc_TypeError, _("the keys of a dict must all have one type"));
            return NULL;
          }
      for (guint i = 1; same && i < values->len; i++)
        same = g_variant_type_equal (g_variant_get_type (values->pdata[0]),
                                     g_variant_get_type (values->pdata[i]));

      for (guint i = 0; i < keys->len; i++)
        {
          GVariant *v = same ? values->pdata[i] : g_variant_new_variant (values->pdata[i]);
          g_ptr_array_add (entries, g_variant_ref_sink (g_variant_new_dict_entry (keys->pdata[i], v)));
        }
      return g_variant_new_array (NULL, (GVariant **) entries->pdata, entries->len);
    }

  if (is_instance_of (object, "Variant"))
    return variant_wrapper_to_variant (object, child);

  if (is_instance_of (object, "FD"))
    return fd_to_variant (object, child);

  if (is_glib_variant (object))
    return from_glib_variant (object);

  if (object == Py_None)
    PyErr_SetString (PyExc_TypeError,
                     _("None has no GVariant type: use afork.Variant('m…', None) for a maybe"));
  else
    raise_error (PyExc_TypeError, _("cannot convert a %s to a GVariant"),
                  Py_TYPE (object)->tp_name);
  return NULL;
}
