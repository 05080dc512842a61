"""JSON Lines intake (DESIGN §4): records in, cases out, nothing lost and nothing twice.

A line is rejected (kept in `dead_letters` with its reason, and on the record) only when it
cannot be a case. Anything else odd is accepted, flagged for triage and its raw value kept in
the case's `raw` column, so that a dispatcher sees every real report.

Choices this package makes (the contract leaves them open):
- Lines are split on b"\\n" only (not on \\x1c–\\x1f, NEL, U+2028 …, which str.splitlines
  knows), and line numbers are physical, 1-based, as `wc -l` counts them. Every line is
  accepted, duplicate, rejected or blank, and the four counts add up to the lines read
  (`accepted=N duplicate=N rejected=N blank=N`). Blank: nothing but white space as
  str.isspace knows it (so also lines of \\x1c–\\x1f, NEL, U+3000) or a lone byte-order mark.
- A UTF-8 byte-order mark at the start of a line is ignored.
- The dedupe key is normalised, then compared and stored: `source` and `external_id` in
  Unicode NFKC with surrounding white space stripped (NFC, NFD, full-width digits and letters
  are one key; case is kept); a number is its decimal text. The value as received is kept in
  `raw` when normalising changed it (see `readers.read_key`). Keys stored before NFKC keep
  their old form.
- The dedupe key (`source`, `external_id`) is kept exactly or the line is rejected: any
  stand-in for what cannot be stored could equal another report's real key and lose it as a
  "duplicate". So a line whose `source` or `external_id` holds bytes that are not UTF-8 is
  rejected ("external_id holds bytes that are not UTF-8"), as is one whose key holds a lone
  surrogate or NUL (on both databases, so a line means the same on either).
- Elsewhere, bytes that are not valid UTF-8 are decoded with U+FFFD in their place; if the
  line still parses, the case is accepted and flagged ("not valid UTF-8 …") and the line as
  received is kept in `raw["line"]` with each bad byte written as `\\xNN` (backslashreplace).
  A dead letter keeps the same backslashreplace text.
- In text fields, lone surrogates (JSON "\\ud800") cannot be stored as UTF-8 by either
  database: each is written as the literal six characters `\\ud800` and the case is flagged.
  NUL is stored as is on SQLite; PostgreSQL text cannot hold it, so there it becomes the
  literal six characters `\\u0000`, flagged the same way. `raw` JSON keeps the exact values.
- `received_at` more than a day ahead of our clock (`MAX_AHEAD`) or more than ten years
  behind it (`MAX_BELIEVED`) is a wrong clock at the sender: the case is flagged, the value
  kept in raw and our time of intake used, since the clocks start at receipt (a year-1800
  receipt would go to the command centre on the first sweep). One within the past week
  (`MAX_BEHIND`) is a feed catching up and kept as given, so its cases escalate honestly;
  one older than that is kept too (a backfill is reported on its own days) but flagged. A
  `reported_at` beyond ten years is stored as NULL; beyond a week, kept; both flagged.
- The time of intake (`now`, unless injected) is read per batch, when its lines are read.
  Input from a pipe or tty is committed as it arrives (see `ingest`), not at 5,000 lines.
- A time without an offset is read in the deployment's time zone (feeds in China commonly
  send local times), flagged ("has no UTC offset (read as Asia/Shanghai)") and kept in raw.
  A time must be ISO 8601 text: a number (seconds or milliseconds? UTC or local?) is
  unreadable. An unreadable `reported_at` is stored as NULL and flagged; an unreadable
  `received_at` becomes `now` and is flagged. `ingest --history` reads times as given (any
  past, numbers as Unix seconds, no offset unflagged): a past case's times are its own.
- Missing `grid` / `category` / `priority` are not flagged (the contract makes them optional);
  unknown ones are. A grid may be given by its 14-digit code or its map label ("N3-07"); a
  category by its code (an integer is zero-padded: 590 → "0590") or its Chinese name.
- JSON nested deeper than 64 levels is rejected before parsing, on every path alike (json's
  own limit depends on the call stack); an integer beyond Python's int-string limit (4,300
  digits) is kept as its digits, a string, rather than rejecting the line.
- Hard limits (a breach rejects the line): a line of at most `[intake] max_line_bytes`
  (default 4 MiB; a longer one is read in bounded steps, never whole, and its dead letter
  keeps the first 1 KiB and its size), `source` ≤ 64 and
  `external_id` ≤ 200 characters (their column sizes), `title`, `location` and `reporter`
  ≤ 100,000 characters, `description` ≤ 1,000,000 characters (100 kB of text is accepted).

How it is fast (≥ 20k records/s into SQLite, DESIGN §5): batches of `batch` lines, each one
transaction under the record's head lock; hand-written validation; orjson for plain lines
(json for anything it might read differently); dedupe by one range query per source and
batch on SQLite (IN queries when the range holds other ids); ids handed out under the lock
and rows sent as tuples to the driver's executemany (no ORM, no per-value SQLAlchemy
processing; SQLite times bound as ready text); the cyclic GC paused for the run; and, for
long inputs, a forked worker process parsing and validating the next batches while this
process writes (see `ingest(workers=)`). The worker also writes each case's record detail
and its hashed encoding, so the writer only chains hashes (`store.record.chain_rows`).

The modules, in the order a line goes through them: `lines` (bytes to a parsed value),
`validate` (`normalise`: a value to column values, composed of the per-field `readers`),
`prepare` (clocks started, a row laid out as `rows` says), `insert` (dedupe and one
transaction, through `sql`); `run` drives them, with `pool` (a forked worker) or `stream`
(a reader thread for pipes). `limits`, `outcome`, `lookups`, `reasons` and `unstorable`
hold what several of them share.
"""

from tafang.store.intake.outcome import IngestResult, Normalised, Rejected
from tafang.store.intake.run import ingest, ingest_records
from tafang.store.intake.validate import normalise

__all__ = ["IngestResult", "Normalised", "Rejected", "ingest", "ingest_records", "normalise"]
