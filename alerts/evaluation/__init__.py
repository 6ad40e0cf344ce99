"""The evaluation inbox (ADR 0020): every source of work for the rules — readings, completed
answers, missed questionnaires — puts a row in one table in its own transaction (``enqueue``);
one task claims rows and runs the rules on them; one sweep finds what a lost task left.

Source apps use only what this module exports. The rule running itself lives beside it:
``readings``, ``responses``, ``missed`` (one module per source), ``services`` (the task's work
and the sweep), ``dispatch`` (asking for tasks: the sender thread and the waiting-task mark)."""

from alerts.evaluation.dispatch import request_soon
from alerts.evaluation.inbox import enqueue, enqueue_each, pending_object_ids, reading_enqueue_sql
from alerts.evaluation.models import PendingEvaluation, Source

__all__ = ["PendingEvaluation", "Source", "enqueue", "enqueue_each", "pending_object_ids", "reading_enqueue_sql",
           "request_soon"]
