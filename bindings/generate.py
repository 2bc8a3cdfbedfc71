#!/usr/bin/python3
"""Generate the managed P/Invoke layer and the native ABI layout table from xdit.h.

The native library has one public C header, native/include/xdit/xdit.h. This script parses it with
libclang (the python3-clang bindings of Debian) and writes

  managed/XDit.Native/NativeMethods.g.cs  constants, enums, blittable structs and [LibraryImport]
                                          declarations for every XDIT_API function;
  native/src/core/abi_layout.g.h          one XDIT_ABI_STRUCT / XDIT_ABI_FIELD line per struct and
                                          field, compiled into the library so the managed layout
                                          tests can compare sizes and offsets with the C compiler's.

libclang is used rather than CppSharp because the package registry this project builds from does
not serve CppSharp, and a C99 header needs nothing more than a C parser and a small mapping table.

Types are mapped by the name they are spelled with (int64_t -> long), never by the canonical type,
so the C# signatures do not change with the platform the generator runs on. Anything the generator
cannot map - a clang error, an unknown type, an opaque struct without a SafeHandle class - stops it
with exit code 2 instead of producing a binding that is silently wrong.

Usage (from any directory):
  /usr/bin/python3 bindings/generate.py           write both files (only those whose content changed)
  /usr/bin/python3 bindings/generate.py --check   exit 1 and show a diff if a file on disk is stale
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from clang import cindex
except ImportError:  # reported by main() with the fix
    cindex = None

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = Path("native/include/xdit/xdit.h")
INCLUDE_DIR = Path("native/include")
CSHARP_OUTPUT = Path("managed/XDit.Native/NativeMethods.g.cs")
LAYOUT_OUTPUT = Path("native/src/core/abi_layout.g.h")
REGENERATE_COMMAND = "/usr/bin/python3 bindings/generate.py"

CLANG_ARGS = ["-x", "c", "-std=c99", "-I", str(REPO_ROOT / INCLUDE_DIR)]
LIBCLANG_CANDIDATES = (
    "/usr/lib/llvm-14/lib/libclang-14.so.1",
    "/usr/lib/x86_64-linux-gnu/libclang-14.so.1",
)

EXPORT_MACRO = "XDIT_API"
CONSTANT_PREFIX = "XDIT_"
LIBRARY_NAME = "xdit_native"

# Opaque C structs and the hand-written SafeHandle class that owns a pointer to one.
HANDLE_TYPES = {
    "xdit_context": "ContextHandle",
    "xdit_buffer": "BufferHandle",
    "xdit_comm": "CommHandle",
    "xdit_comm_request": "CommRequestHandle",
    "xdit_mark": "MarkHandle",
    "xdit_graph": "GraphHandle",
}

# Functions that end a handle's life take the raw pointer (nint): SafeHandle.ReleaseHandle calls them.
RELEASE_SUFFIXES = ("_destroy", "_free")

SCALAR_TYPES = {
    "int8_t": "sbyte",
    "uint8_t": "byte",
    "int16_t": "short",
    "uint16_t": "ushort",
    "int32_t": "int",
    "uint32_t": "uint",
    "int64_t": "long",
    "uint64_t": "ulong",
    "size_t": "nuint",
    "int": "int",
    "float": "float",
    "double": "double",
}

# Element types C# allows in a fixed-size buffer.
FIXED_BUFFER_TYPES = {"sbyte", "byte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double"}

CSHARP_KEYWORDS = frozenset("""
    abstract as base bool break byte case catch char checked class const continue decimal default
    delegate do double else enum event explicit extern false finally fixed float for foreach goto if
    implicit in int interface internal is lock long namespace new null object operator out override
    params private protected public readonly ref return sbyte sealed short sizeof stackalloc static
    string struct switch this throw true try typeof uint ulong unchecked unsafe ushort using virtual
    void volatile while
""".split())

INT32_RANGE = range(-(2**31), 2**31)


class GeneratorError(Exception):
    """The header cannot be turned into correct bindings; the message says why."""


# ---- model -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    name: str
    value: int
    doc: list[str]


@dataclass(frozen=True)
class EnumMember:
    name: str  # C# name
    value: int
    doc: list[str]


@dataclass(frozen=True)
class Enum:
    c_name: str
    cs_name: str
    members: list[EnumMember]
    doc: list[str]


@dataclass(frozen=True)
class Field:
    name: str
    cs_type: str
    array_length: int | None  # a C array field becomes a C# fixed buffer of this length
    doc: list[str]


@dataclass(frozen=True)
class Struct:
    c_name: str
    cs_name: str
    fields: list[Field]
    doc: list[str]


@dataclass(frozen=True)
class Function:
    name: str
    cs_return: str
    parameters: list[tuple[str, str]]  # (C# type, name)
    doc: list[str]


@dataclass(frozen=True)
class Api:
    constants: list[Constant]
    enums: list[Enum]
    structs: list[Struct]
    functions: list[Function]


# ---- names -----------------------------------------------------------------------------------------


def pascal_case(snake: str) -> str:
    """xdit_context_options -> XditContextOptions, INVALID_ARGUMENT -> InvalidArgument, BF16 -> BF16."""
    words = [w for w in snake.split("_") if w]
    return "".join(w[0].upper() + (w[1:] if any(ch.isdigit() for ch in w) else w[1:].lower()) for w in words)


def identifier(name: str) -> str:
    """A C name usable as a C# identifier (C# keywords get an @)."""
    return "@" + name if name in CSHARP_KEYWORDS else name


def enum_member_prefix(type_name: str, member_names: list[str]) -> str:
    """The prefix all members of an enum share: XDIT_STATUS_ for xdit_status, XDIT_DEVICE_ for
    xdit_device_kind (its members are XDIT_DEVICE_CPU, ...). Every member keeps at least one word."""
    derived = type_name.upper() + "_"
    if all(m.startswith(derived) and len(m) > len(derived) for m in member_names):
        return derived
    common = []
    for words in zip(*(m.split("_")[:-1] for m in member_names)):
        if len(set(words)) != 1:
            break
        common.append(words[0])
    return "".join(w + "_" for w in common)


def spelled_name(c_type) -> str:
    """The type's name as the header spells it, without qualifiers ('const int64_t' -> 'int64_t')."""
    return re.sub(r"\b(const|volatile|restrict)\s+", "", c_type.spelling).strip()


# ---- comments --------------------------------------------------------------------------------------


def comment_text(token: str) -> list[str]:
    """The lines of a /* */ or // comment without its markers and leading ' * '."""
    body = token[2:] if token.startswith("//") else token[2:-2]
    lines = [re.sub(r"^\s*\*? ?", "", line).rstrip() for line in body.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


class Comments:
    """The comments of the header, found by position: a comment that stands on its own lines
    documents the declaration starting on the next line; one that follows code documents that code."""

    def __init__(self, tu, header: Path):
        self._leading: dict[int, list[str]] = {}  # last line of the comment -> text
        self._trailing: dict[int, list[tuple[int, list[str]]]] = {}  # line -> (column, text)
        code_lines: set[int] = set()
        extent = tu.get_extent(str(header), (0, header.stat().st_size))
        for token in tu.get_tokens(extent=extent):
            start, end = token.extent.start, token.extent.end
            if token.kind != cindex.TokenKind.COMMENT:
                code_lines.add(start.line)
            elif start.line in code_lines:
                self._trailing.setdefault(start.line, []).append((start.column, comment_text(token.spelling)))
            else:  # a comment right below another one continues it (runs of // lines)
                self._leading[end.line] = self._leading.pop(start.line - 1, []) + comment_text(token.spelling)

    def take(self, cursor) -> list[str]:
        """The comment above the cursor's first line, else the first one after its end on its last
        line. A comment documents one declaration only: take a type's comment before its members'."""
        leading = self._leading.pop(cursor.extent.start.line - 1, None)
        if leading is not None:
            return leading
        end = cursor.extent.end
        trailing = self._trailing.get(end.line, [])
        for index, (column, text) in enumerate(trailing):
            if column >= end.column:
                del trailing[index]
                return text
        return []


# ---- types -----------------------------------------------------------------------------------------


class TypeMapper:
    """C types of the header -> C# types. Each method returns None for a type it cannot map."""

    def __init__(self, enums: dict[str, str], structs: dict[str, str]):
        self._enums = enums  # C typedef name -> C# name
        self._structs = structs

    def value(self, c_type) -> str | None:
        """A scalar, enum or struct passed by value."""
        name = spelled_name(c_type)
        return SCALAR_TYPES.get(name) or self._enums.get(name) or self._structs.get(name)

    def pointer(self, pointee) -> str | None:
        """An unmanaged pointer: void*, void**, byte* for char*, XditTensor*, ulong*."""
        if pointee.kind == cindex.TypeKind.VOID:
            return "void*"
        if pointee.kind == cindex.TypeKind.POINTER:
            inner = self.pointer(pointee.get_pointee())
            return inner and inner + "*"
        if spelled_name(pointee) == "char":
            return "byte*"
        target = self.value(pointee)
        return target and target + "*"

    def parameter(self, c_type, releases_handle: bool) -> str | None:
        """Parameters take by-reference forms, so that callers need no unsafe code: handles become
        SafeHandles (raw nint in release functions), const char* a UTF-8 string, const T* `in T`,
        T* `out T` (the header's non-const struct and scalar pointers are all results), void** `out
        nint`, and byte ranges `in byte` (const void*) or `ref byte` (void*). A null const T* is
        passed as Unsafe.NullRef<T>()."""
        if c_type.kind != cindex.TypeKind.POINTER:
            return self.value(c_type)
        pointee = c_type.get_pointee()
        name = spelled_name(pointee)
        if name in HANDLE_TYPES:
            return "nint" if releases_handle else HANDLE_TYPES[name]
        if pointee.kind == cindex.TypeKind.POINTER:
            if pointee.is_const_qualified():
                return None
            inner = pointee.get_pointee()
            handle = HANDLE_TYPES.get(spelled_name(inner))
            if handle:
                return None if releases_handle else "out " + handle
            return "out nint" if inner.kind == cindex.TypeKind.VOID else None
        if name == "char":
            return "string" if pointee.is_const_qualified() else None
        if pointee.kind == cindex.TypeKind.VOID:
            return "in byte" if pointee.is_const_qualified() else "ref byte"
        target = self.value(pointee)
        return target and ("in " if pointee.is_const_qualified() else "out ") + target

    def result(self, c_type) -> str | None:
        """A return value. const char* becomes nint: the string is library-owned (read it with
        Marshal.PtrToStringUTF8), and a C# string return would make the marshaller free it."""
        if c_type.kind == cindex.TypeKind.VOID:
            return "void"
        if c_type.kind == cindex.TypeKind.POINTER:
            pointee = c_type.get_pointee()
            return "nint" if spelled_name(pointee) == "char" and pointee.is_const_qualified() else None
        return self.value(c_type)

    def field(self, c_type) -> tuple[str, int | None] | None:
        """A struct field: (C# type, fixed-buffer length or None)."""
        if c_type.kind == cindex.TypeKind.CONSTANTARRAY:
            element = SCALAR_TYPES.get(spelled_name(c_type.get_array_element_type()))
            return (element, c_type.element_count) if element in FIXED_BUFFER_TYPES else None
        if c_type.kind == cindex.TypeKind.POINTER:
            target = self.pointer(c_type.get_pointee())
        else:
            target = self.value(c_type)
        return target and (target, None)


# ---- reading the header ----------------------------------------------------------------------------


def parse(header: Path):
    """Parse the header as C99 and fail on every clang error (an unknown type name would otherwise
    quietly become int)."""
    if not header.is_file():
        raise GeneratorError(f"{header}: no such file")
    library = os.environ.get("XDIT_LIBCLANG") or next((p for p in LIBCLANG_CANDIDATES if os.path.exists(p)), None)
    if library and not cindex.Config.loaded:
        cindex.Config.set_library_file(library)
    try:
        tu = cindex.Index.create().parse(
            str(header), args=CLANG_ARGS, options=cindex.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
        )
    except (cindex.LibclangError, cindex.TranslationUnitLoadError) as error:
        raise GeneratorError(f"libclang could not parse {header}: {error}") from error
    errors = []
    for d in tu.diagnostics:
        message = f"{d.location.file}:{d.location.line}:{d.location.column}: {d.spelling}"
        if d.severity >= cindex.Diagnostic.Error:
            errors.append(message)
        elif d.severity >= cindex.Diagnostic.Warning:
            print(f"warning: {message}", file=sys.stderr)
    if errors:
        raise GeneratorError("clang reported errors:\n" + "\n".join(errors))
    return tu


def c_integer(literal: str) -> int | None:
    """The value of a C integer literal (decimal, octal or hex, any suffix), else None."""
    match = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[uUlL]*", literal)
    if not match:
        return None
    digits = match.group(1)
    base = 16 if digits[:2] in ("0x", "0X") else 8 if len(digits) > 1 and digits[0] == "0" else 10
    return int(digits, base)


def read_constant(cursor, comments: Comments) -> Constant | None:
    """An XDIT_ macro whose whole value is one integer literal; other macros are not bound."""
    body = list(cursor.get_tokens())[1:]
    if not cursor.spelling.startswith(CONSTANT_PREFIX) or len(body) != 1:
        return None
    value = c_integer(body[0].spelling) if body[0].kind == cindex.TokenKind.LITERAL else None
    if value is None:
        return None
    if value not in INT32_RANGE:
        raise GeneratorError(f"macro {cursor.spelling} = {value} does not fit a C# int")
    return Constant(cursor.spelling, value, comments.take(cursor))


def read_enum(name: str, definition, typedef, comments: Comments) -> Enum:
    """An enum with its members renamed: XDIT_STATUS_INVALID_ARGUMENT -> InvalidArgument."""
    doc = comments.take(typedef)
    constants = [c for c in definition.get_children() if c.kind == cindex.CursorKind.ENUM_CONSTANT_DECL]
    prefix = enum_member_prefix(name, [c.spelling for c in constants])
    members = []
    for constant in constants:
        member = pascal_case(constant.spelling[len(prefix):])
        if not member or member[0].isdigit():
            raise GeneratorError(f"enum {name}: {constant.spelling} without its prefix {prefix} is no C# name")
        if constant.enum_value not in INT32_RANGE:
            raise GeneratorError(f"enum {name}: {constant.spelling} = {constant.enum_value} does not fit an int")
        members.append(EnumMember(member, constant.enum_value, comments.take(constant)))
    return Enum(name, pascal_case(name), members, doc)


def read_struct(name: str, definition, typedef, types: TypeMapper, comments: Comments) -> Struct:
    """A struct with a body; its fields keep their C names."""
    doc = comments.take(typedef)
    fields = []
    for child in definition.get_children():
        if child.kind != cindex.CursorKind.FIELD_DECL:
            raise GeneratorError(f"struct {name}: {child.kind.name} at line {child.location.line} is not supported")
        if child.is_bitfield():
            raise GeneratorError(f"struct {name}, field {child.spelling}: bit-fields have no C# equivalent")
        mapped = types.field(child.type)
        if mapped is None:
            raise GeneratorError(f"struct {name}, field {child.spelling}: cannot map type '{child.type.spelling}'")
        fields.append(Field(child.spelling, *mapped, comments.take(child)))
    return Struct(name, pascal_case(name), fields, doc)


def read_function(cursor, types: TypeMapper, comments: Comments) -> Function:
    """An exported function; it and its parameters keep their C names."""
    name = cursor.spelling
    if cursor.type.kind != cindex.TypeKind.FUNCTIONPROTO:
        raise GeneratorError(f"function {name} has no prototype: declare it as {name}(void)")
    if cursor.type.is_function_variadic():
        raise GeneratorError(f"function {name} is variadic, which P/Invoke cannot call")
    cs_return = types.result(cursor.result_type)
    if cs_return is None:
        raise GeneratorError(f"function {name}: cannot map return type '{cursor.result_type.spelling}'")
    releases_handle = name.endswith(RELEASE_SUFFIXES)
    parameters = []
    for index, argument in enumerate(cursor.get_arguments()):
        if not argument.spelling:
            raise GeneratorError(f"function {name}: parameter {index + 1} has no name")
        cs_type = types.parameter(argument.type, releases_handle)
        if cs_type is None:
            raise GeneratorError(
                f"function {name}, parameter {argument.spelling}: cannot map type '{argument.type.spelling}'"
            )
        parameters.append((cs_type, identifier(argument.spelling)))
    return Function(name, cs_return, parameters, comments.take(cursor))


def top_level_cursors(tu, header: Path) -> list:
    """The declarations, macros and macro uses of the header itself, not of the headers it includes."""
    return [c for c in tu.cursor.get_children() if c.location.file and Path(c.location.file.name) == header]


def read_typedefs(cursors) -> tuple[list, list, set[int]]:
    """Typedefs name every enum and struct: typedef enum xdit_x {...} xdit_x; typedef struct xdit_x xdit_x;
    Returns the (typedef, definition) pairs of enums and of structs with a body, and the offsets of all
    named definitions. Opaque structs must have a SafeHandle class."""
    kinds = cindex.CursorKind
    enums, structs, named_definitions = [], [], set()
    for typedef in (c for c in cursors if c.kind == kinds.TYPEDEF_DECL):
        declaration = typedef.underlying_typedef_type.get_declaration()
        definition = declaration.get_definition()
        if declaration.kind == kinds.ENUM_DECL:
            enums.append((typedef, definition))
        elif declaration.kind == kinds.STRUCT_DECL and definition is None:
            if typedef.spelling not in HANDLE_TYPES:
                raise GeneratorError(
                    f"opaque struct {typedef.spelling} has no SafeHandle class: "
                    "add it to HANDLE_TYPES in bindings/generate.py"
                )
        elif declaration.kind == kinds.STRUCT_DECL:
            structs.append((typedef, definition))
        else:
            raise GeneratorError(f"typedef {typedef.spelling}: only typedefs of enums and structs are supported")
        if definition is not None:
            named_definitions.add(definition.extent.start.offset)
    return enums, structs, named_definitions


def read_api(header: Path) -> Api:
    tu = parse(header)
    comments = Comments(tu, header)
    cursors = top_level_cursors(tu, header)
    kinds = cindex.CursorKind
    enum_typedefs, struct_typedefs, named_definitions = read_typedefs(cursors)
    types = TypeMapper(
        {t.spelling: pascal_case(t.spelling) for t, _ in enum_typedefs},
        {t.spelling: pascal_case(t.spelling) for t, _ in struct_typedefs},
    )
    export_offsets = [
        c.extent.start.offset for c in cursors if c.kind == kinds.MACRO_INSTANTIATION and c.spelling == EXPORT_MACRO
    ]
    constants, functions = [], []
    for cursor in cursors:
        if cursor.kind == kinds.MACRO_DEFINITION:
            constant = read_constant(cursor, comments)
            if constant:
                constants.append(constant)
        elif cursor.kind == kinds.FUNCTION_DECL:
            if not any(cursor.extent.start.offset <= o < cursor.location.offset for o in export_offsets):
                raise GeneratorError(f"function {cursor.spelling} is not declared {EXPORT_MACRO}")
            functions.append(read_function(cursor, types, comments))
        elif cursor.kind in (kinds.ENUM_DECL, kinds.STRUCT_DECL, kinds.UNION_DECL) and cursor.is_definition():
            if cursor.extent.start.offset not in named_definitions:
                keyword = cursor.kind.name.split("_")[0].lower()
                raise GeneratorError(
                    f"line {cursor.location.line}: name the {keyword} with a typedef, "
                    f"as in typedef {keyword} xdit_x {{...}} xdit_x;"
                )
        elif cursor.kind not in (kinds.MACRO_INSTANTIATION, kinds.INCLUSION_DIRECTIVE, kinds.TYPEDEF_DECL,
                                 kinds.ENUM_DECL, kinds.STRUCT_DECL):
            raise GeneratorError(f"line {cursor.location.line}: {cursor.kind.name} {cursor.spelling} is not supported")

    return Api(
        constants,
        [read_enum(t.spelling, d, t, comments) for t, d in enum_typedefs],
        [read_struct(t.spelling, d, t, types, comments) for t, d in struct_typedefs],
        functions,
    )


# ---- writing C# and the layout table --------------------------------------------------------------


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(doc: list[str], indent: str) -> list[str]:
    """A comment as a /// <summary> block (one line for a one-line comment)."""
    lines = [xml_escape(line) for line in doc]
    if len(lines) <= 1:
        return [f"{indent}/// <summary>{line}</summary>" for line in lines]
    return [f"{indent}/// <summary>", *(f"{indent}/// {line}".rstrip() for line in lines), f"{indent}/// </summary>"]


def render_constants(constants: list[Constant]) -> list[str]:
    lines = ["/// <summary>The integer macros of xdit.h.</summary>", "public static partial class NativeConstants", "{"]
    for constant in constants:
        lines += summary(constant.doc, "    ")
        lines.append(f"    public const int {constant.name} = {constant.value};")
    return lines + ["}"]


def render_enum(enum: Enum) -> list[str]:
    lines = [*summary(enum.doc, ""), f"public enum {enum.cs_name} : int", "{"]
    for member in enum.members:
        lines += summary(member.doc, "    ")
        lines.append(f"    {member.name} = {member.value},")
    return lines + ["}"]


def render_struct(struct: Struct) -> list[str]:
    lines = [
        *summary(struct.doc, ""),
        "[StructLayout(LayoutKind.Sequential)]",
        f'[NativeStruct("{struct.c_name}")]',
        f"public unsafe partial struct {struct.cs_name}",
        "{",
    ]
    for field in struct.fields:
        lines += summary(field.doc, "    ")
        if field.array_length is None:
            lines.append(f"    public {field.cs_type} {identifier(field.name)};")
        else:
            lines.append(f"    public fixed {field.cs_type} {identifier(field.name)}[{field.array_length}];")
    return lines + ["}"]


def render_functions(functions: list[Function]) -> list[str]:
    lines = [
        "/// <summary>The exported functions of the native library.</summary>",
        "public static unsafe partial class NativeMethods",
        "{",
        f'    public const string LibraryName = "{LIBRARY_NAME}";',
    ]
    for function in functions:
        parameters = ", ".join(f"{cs_type} {name}" for cs_type, name in function.parameters)
        lines += [
            "",
            *summary(function.doc, "    "),
            "    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8)]",
            "    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]",
            f"    public static partial {function.cs_return} {identifier(function.name)}({parameters});",
        ]
    return lines + ["}"]


def render_csharp(api: Api) -> str:
    blocks = [
        [
            f"// <auto-generated> by bindings/generate.py from {HEADER.as_posix()}. Do not edit.",
            "#nullable enable",
            "",
            "using System.Runtime.CompilerServices;",
            "using System.Runtime.InteropServices;",
            "",
            "namespace XDit.Native;",
        ],
        render_constants(api.constants),
        *(render_enum(enum) for enum in api.enums),
        *(render_struct(struct) for struct in api.structs),
        render_functions(api.functions),
    ]
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def render_layout(api: Api) -> str:
    lines = [f"// Generated by bindings/generate.py from {HEADER.as_posix()}. Do not edit."]
    for struct in api.structs:
        lines.append(f"XDIT_ABI_STRUCT({struct.c_name})")
        lines += [f"XDIT_ABI_FIELD({struct.c_name}, {field.name})" for field in struct.fields]
    return "\n".join(lines) + "\n"


# ---- command line ----------------------------------------------------------------------------------


def read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def write_outputs(outputs: dict[Path, str], out_root: Path) -> None:
    for relative, content in outputs.items():
        path = out_root / relative
        if read_text(path) == content:
            print(f"unchanged {relative.as_posix()}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
        print(f"wrote {relative.as_posix()}")


def check_outputs(outputs: dict[Path, str], out_root: Path, max_diff_lines: int = 40) -> int:
    """0 if every file on disk equals what the generator would write, else 1 with a diff."""
    stale = 0
    for relative, content in outputs.items():
        on_disk = read_text(out_root / relative)
        if on_disk == content:
            continue
        stale += 1
        name = relative.as_posix()
        print(f"{name} is {'missing' if on_disk is None else 'stale'}:", file=sys.stderr)
        diff = list(difflib.unified_diff((on_disk or "").splitlines(), content.splitlines(),
                                         f"{name} (on disk)", f"{name} (generated)", lineterm=""))
        for line in diff[:max_diff_lines]:
            print(line, file=sys.stderr)
        if len(diff) > max_diff_lines:
            print(f"... {len(diff) - max_diff_lines} more diff lines", file=sys.stderr)
    if stale:
        print(f"regenerate with: {REGENERATE_COMMAND}", file=sys.stderr)
        return 1
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and show a diff if a generated file is stale")
    parser.add_argument("--header", type=Path, default=REPO_ROOT / HEADER,
                        help=f"read this file as if it were {HEADER.as_posix()} (for testing)")
    parser.add_argument("--out-root", type=Path, default=REPO_ROOT,
                        help="directory the output paths are relative to (default: the repository root)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if cindex is None:
        print("generate.py: error: no clang module: apt-get install python3-clang-14 libclang-14-dev "
              "and run with /usr/bin/python3", file=sys.stderr)
        return 2
    try:
        api = read_api(arguments.header.resolve())
    except GeneratorError as error:
        print(f"generate.py: error: {error}", file=sys.stderr)
        return 2
    outputs = {CSHARP_OUTPUT: render_csharp(api), LAYOUT_OUTPUT: render_layout(api)}
    if arguments.check:
        return check_outputs(outputs, arguments.out_root)
    write_outputs(outputs, arguments.out_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
