"""Outbox delivery: escalation notices to each tower level's duty contact, at least once.

One concept a module:
- `settings`  the knobs (timeouts, retries, lease, rate window, digest size)
- `plan`      a target (one robot) and its due rows as messages: singles, one digest over
              the rate window; robot and digest keys
- `claim`     picking due rows and leasing them within each robot's rate window, in one
              transaction (safe with two daemons)
- `render`    the Chinese text of an event or a digest (names from `store.labels`,
              untrusted text through `store.text.safe`)
- `formats`   the seam to a robot's wire format; `dingtalk` and `webhook` (plain JSON) are
              the formats, each one module (signing, body, success check)
- `send`      one message: signed URL, POST under a hard deadline, answer checked
- `settle`    outcomes written: sent, or retried with capped backoff (never dropped;
              only rows actually posted are charged an attempt)
- `alarm`     notices stuck too long are told the centre through another contact
- `deliver`   `deliver_due`: claim, batches per target in parallel, settle, report
- `report`    what a call did; `redact` keeps secrets out of logs and errors;
              `admin` the outbox for operators (summary, requeue); people give up on a
              notice or retry it through `tafang.store.notices`

At least once: a crash mid-send only delays rows until their lease ends, and the
`Idempotency-Key` header lets receivers drop the rare double.
"""

from tafang.sla.notify.admin import outbox_summary, requeue_dead
from tafang.sla.notify.deliver import deliver_due
from tafang.sla.notify.plan import digest_key, robot_key
from tafang.sla.notify.redact import redact
from tafang.sla.notify.report import ContactResult, DeliveryReport
from tafang.sla.notify.settings import NotifySettings

__all__ = [
    "ContactResult",
    "DeliveryReport",
    "NotifySettings",
    "deliver_due",
    "digest_key",
    "outbox_summary",
    "redact",
    "requeue_dead",
    "robot_key",
]
