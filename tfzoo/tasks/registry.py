"""Tasks by name, in a module of its own so that a task module can look up another task without an import cycle."""
from __future__ import annotations

from tfzoo.tasks.base import Task

_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make `task` known by its name (models register with `task=NAME`, datasets declare `task=NAME`)."""
    if task.name in _TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def list_tasks() -> list[str]:
    """Names of every registered task, sorted."""
    return sorted(_TASKS)


def get_task(name: str | Task) -> Task:
    """The task of that name (a Task is returned as is); ValueError listing the known names otherwise."""
    if isinstance(name, Task):
        return name
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None


def classification_task(num_classes: int) -> Task:
    """The task of a classifier with `num_classes` classes: binary for two (one sigmoid probability), multiclass
    for more (a softmax over the classes). ValueError below two."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be a whole number >= 2, got {num_classes!r}")
    return get_task("binary" if num_classes == 2 else "multiclass")
