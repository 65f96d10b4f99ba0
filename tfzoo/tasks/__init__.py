"""Tasks by name: each is one module owning what follows from what a model predicts (see tfzoo.tasks.base).

A new task is one new module with a `Task` subclass, registered with `register_task`.
"""
from __future__ import annotations

from tfzoo.tasks.base import PredictionTask, Request, Task
from tfzoo.tasks.binary import BinaryClassification
from tfzoo.tasks.language_model import LanguageModel
from tfzoo.tasks.multiclass import MulticlassClassification
from tfzoo.tasks.regression import Regression

__all__ = ["PredictionTask", "Request", "Task", "get_task", "list_tasks", "register_task"]

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


register_task(Regression())
register_task(BinaryClassification())
register_task(MulticlassClassification())
register_task(LanguageModel())
