"""The shipped strategy template library and the template engine (see :mod:`.templates`)."""

from stratforge.explore.templates.templates import (
    NAME_PLACEHOLDER,
    SHIPPED_DIR,
    TEMPLATE_SUFFIX,
    ParamSpec,
    Template,
    TemplateError,
    load_library,
    load_template,
    save_template,
    template_from_schema,
)

__all__ = [
    "NAME_PLACEHOLDER",
    "SHIPPED_DIR",
    "TEMPLATE_SUFFIX",
    "ParamSpec",
    "Template",
    "TemplateError",
    "load_library",
    "load_template",
    "save_template",
    "template_from_schema",
]
