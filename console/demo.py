"""`tafang demo`: the console on a scratch store that moves by itself.

A temporary SQLite file gets the Gudang deployment, its roster and the backlog of a good shift:
open cases in every state, each stage done on time (stage times in the past, through the
store's own moves), officers out on some of them, one or two cases just overdue. A background
thread then plays a live feed through the real intake path (the 2023 channel mix, realistic
titles per category, random cells) and the colleagues' side of the work: another dispatcher
acknowledges and dispatches to the top-ranked officer, officers arrive and report back, a
checker closes, each after a realistic delay that is mostly inside the 1-3-5 clocks. The SLA
sweep runs in-process and stands in for the daemon (its heartbeat is written before the
console opens, so the header says the daemon runs from the first frame).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tafang.sla.daemon import write_heartbeat
from tafang.sla.escalate import sweep
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment, load_config
from tafang.store.db import make_engine
from tafang.store.intake import ingest_records
from tafang.store.views import CaseView

# 2023 volumes per channel (seed); the minor channels are (assumed) small shares.
CHANNEL_MIX: tuple[tuple[str, int], ...] = (
    ("ping_an", 34_536),
    ("smart_alarm", 12_657),
    ("grid_app", 7_915),
    ("xihu_code", 4_317),
    ("city_ops", 1_500),
    ("hotline", 1_200),
    ("patrol", 900),
    ("enterprise", 600),
)

TITLES: dict[str, tuple[str, ...]] = {
    "0101": ("小区门口私搭雨棚", "商铺违规搭建遮阳棚"),
    "0102": ("垃圾桶满溢无人清运", "路边暴露垃圾堆积"),
    "0103": ("人行道积存建筑渣土", "绿化带旁堆放渣土"),
    "0104": ("路面油污未清理", "道路泥浆污染"),
    "0106": ("绿地内垃圾散落", "公园草坪脏乱"),
    "0201": ("店招广告牌破损", "违规设置落地广告牌"),
    "0202": ("电线杆张贴小广告", "楼道喷涂办证广告"),
    "0203": ("路口散发培训传单", "地铁口发放小广告"),
    "0301": ("夜间施工噪音扰民", "工地凌晨打桩"),
    "0302": ("工地未覆盖扬尘严重", "拆迁现场扬尘"),
    "0303": ("渣土车沿路撒漏", "运输车辆泥土撒落"),
    "0304": ("施工围挡占用人行道", "管线施工占道未设警示"),
    "0305": ("施工废料堆在路边", "装修垃圾乱倒"),
    "0401": ("自来水管爆裂路面冒水", "小区供水管破裂"),
    "0402": ("人行道路面塌陷", "路面出现坑洞"),
    "0403": ("下穿通道积水", "暴雨后路口积水"),
    "0404": ("电动车楼道起火", "餐馆油烟机着火冒烟"),
    "0501": ("流动摊贩占道经营", "夜市游商堵塞通道"),
    "0502": ("水果店出店经营", "餐馆门口摆桌占道"),
    "0503": ("楼道堆放杂物", "人行道乱堆建材"),
    "0504": ("电动车乱停堵塞盲道", "非机动车停放占用消防通道"),
    "0590": ("共享单车堵塞消防通道", "地铁口共享单车乱停放", "共享单车堆积占用人行道"),
    "0601": ("楼顶违法搭建阳光房", "一楼住户违建院墙"),
    "0602": ("装修工地消防通道堵塞", "装修现场违规动火"),
    "0603": ("广场舞音响扰民", "酒吧深夜噪声"),
    "0604": ("工地拖欠农民工工资", "餐饮店未签劳动合同"),
    "0605": ("超市销售过期食品", "商铺价格欺诈"),
    "0606": ("餐饮油烟直排", "雨水管偷排污水"),
    "0607": ("仓库堆放易燃物", "商铺电线私拉乱接"),
}
ALARM_CATEGORIES = ("0404", "0607", "0602", "0403", "0401")
BIKES = ("0590", "0504")
NEXT: dict[str, tuple[str, str, tuple[float, float]]] = {
    "new": ("ack", "received_at", (15.0, 50.0)),
    "acknowledged": ("dispatch", "acknowledged_at", (30.0, 110.0)),
    "dispatched": ("arrive", "dispatched_at", (60.0, 170.0)),
    "on_scene": ("handle", "arrived_at", (240.0, 720.0)),
    "handled": ("close", "handled_at", (60.0, 240.0)),
}
"""A case's next step in colleagues' hands: the move, the stage time its delay counts from,
and the delay range in seconds (a dispatcher at the terminal is usually quicker)."""
PLACES = ("文三西路", "古墩路", "莲花街", "文二西路", "紫荆花路", "益乐路", "天目山路", "嘉绿苑路")


@dataclass(frozen=True)
class DemoOptions:
    """How the demo plays: `speed` new cases a minute, `backlog` open cases at the start."""

    speed: float = 2.0
    backlog: int = 30
    seed: int | None = None
    progress: bool = True  # simulated officers (and a second dispatcher) move cases along
    sweep: bool = True  # run the SLA escalation sweep in-process


def _scratch_db() -> Path:
    """demo.db in a fresh temporary directory of its own."""
    return Path(tempfile.mkdtemp(prefix="tafang-demo-")) / "demo.db"


def make_demo_store(
    directory: str | Path | None = None, config: str | Path | None = None
) -> tuple[Store, Deployment, Path]:
    """A fresh SQLite store in a temporary directory with the Gudang deployment and roster."""
    d = load_config(config)
    path = Path(directory) / "demo.db" if directory else _scratch_db()
    engine = make_engine(f"sqlite:///{path}")
    return Store(engine, d, clocks=Policy(d)), d, path


def scratch_url(keep: bool = False) -> tuple[str, Callable[[], None]]:
    """A SQLite URL in a fresh temporary directory and the function that removes it
    (or, with `keep`, prints where it is)."""
    path = _scratch_db()
    folder = path.parent

    def cleanup() -> None:
        if keep:
            print(f"demo store kept: {path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    return f"sqlite:///{path}", cleanup


def prepare(store: Store, options: DemoOptions) -> None:
    """Give the roster its live rows, seed the backlog into an empty store (a kept store is
    left as it is) and write the stand-in daemon's first heartbeat."""
    store.sync_roster()
    if not store.cases("open", limit=1):
        seed_backlog(store, options.backlog, random.Random(options.seed))
    from tafang.store.demo_register import seed_register

    seed_register(store, Actor("demo", "demo"))  # enterprises, risk points, inspections (j, x)
    if options.sweep:
        now = datetime.now(UTC)
        write_heartbeat(store.engine, now=now, started_at=now, info={"demo": "in-process sweep"})


class Generator:
    """Random but realistic reports: channel by the 2023 mix, a title for the category."""

    def __init__(self, d: Deployment, rng: random.Random) -> None:
        self.d = d
        self.rng = rng
        self.channels = [c for c, _ in CHANNEL_MIX if c in d.channel_codes]
        self.weights = [w for c, w in CHANNEL_MIX if c in d.channel_codes]
        self.categories = [c.code for c in d.categories if c.code in TITLES]
        self.n = 0

    def record(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        self.n += 1
        channel = rng.choices(self.channels, self.weights)[0]
        if channel == "smart_alarm":
            cat = rng.choice(ALARM_CATEGORIES)
        elif channel == "ping_an" and rng.random() < 0.4:
            cat = rng.choice(BIKES)
        else:
            cat = rng.choice(self.categories)
        grid = rng.choice(self.d.tower.grids)
        prio = rng.choices(("normal", "urgent", "critical"), (85, 12, 3))[0]
        if cat in ("0404", "0402"):
            prio = "critical"
        return {
            "source": channel,
            "external_id": f"demo-{now:%Y%m%d%H%M%S}-{self.n}-{rng.randrange(10**6)}",
            "title": rng.choice(TITLES[cat]),
            "description": f"{grid.community}{rng.choice(PLACES)}{rng.randint(1, 300)}号附近",
            "category": cat,
            "grid": grid.code,
            "location": f"{rng.choice(PLACES)}{rng.randint(1, 300)}号",
            "priority": prio,
            "received_at": now.isoformat(),
            "reporter": rng.choice(("市民", "网格员", "商户", "物业", "")),
        }


def post(store: Store, record: dict[str, Any], actor: Actor) -> None:
    """One report through the real intake path, as a feed's would go."""
    ingest_records(store, [(None, record)], origin="demo", actor=actor)


COLLEAGUE = Actor("d02", "demo-other-terminal")
"""The other dispatcher on shift (acknowledges, dispatches; reports officers' progress)."""
CHECKER = Actor("c01", "demo-check")
"""The checker (监管) who closes handled cases: neither dispatched nor handled them."""

# Backlog shape: (state, share, age range). Ages are shares of the case's own clocks (respond,
# dispatch, arrive budgets from the store's rule) so every finished stage is on time; on-scene
# and handled cases are older (seconds). Two cases are left just overdue.
BACKLOG: tuple[tuple[str, float, str, tuple[float, float]], ...] = (
    ("new", 0.15, "respond", (0.1, 0.7)),
    ("acknowledged", 0.15, "dispatch", (0.4, 0.8)),
    ("dispatched", 0.2, "arrive", (0.6, 0.9)),
    ("on_scene", 0.35, "", (300, 2400)),
    ("handled", 0.15, "", (900, 3600)),
)
LATE: tuple[tuple[str, str, float], ...] = (
    ("new", "respond", 1.3),
    ("acknowledged", "dispatch", 1.1),
)
"""The few breaches of a good shift: one not acknowledged in time, one not dispatched."""
STATE_MOVES = ("ack", "dispatch", "arrive", "handle")
DEPTH = {"new": 0, "acknowledged": 1, "dispatched": 2, "on_scene": 3, "handled": 4}


def stage_times(
    rng: random.Random, received: datetime, state: str, budget: dict[str, int]
) -> list[tuple[str, datetime]]:
    """The moves that brought a case to `state` and when, each inside its own clock."""
    ack = rng.uniform(0.15, 0.6) * budget["respond"]
    sent = ack + rng.uniform(0.2, 0.6) * (budget["dispatch"] - ack)
    there = sent + rng.uniform(0.3, 0.8) * (budget["arrive"] - sent)
    done = there + rng.uniform(240, 900)
    at = [received + timedelta(seconds=x) for x in (ack, sent, there, done)]
    return list(zip(STATE_MOVES, at, strict=True))[: DEPTH[state]]


def _plan(rng: random.Random, n: int) -> list[tuple[str, str, float, float]]:
    """(state, clock the age is a share of or "", low, high) for each backlog case."""
    plan = [(state, clock, share, share) for state, clock, share in LATE][:n]
    rest = n - len(plan)
    for state, part, clock, (lo, hi) in BACKLOG:
        plan += [(state, clock, lo, hi)] * round(part * rest)
    state, _, clock, (lo, hi) = BACKLOG[3]  # rounding: the difference is on scene
    plan += [(state, clock, lo, hi)] * (n - len(plan))
    return plan[:n]


def seed_backlog(store: Store, n: int, rng: random.Random, now: datetime | None = None) -> None:
    """`n` open cases of a good shift: every state, stages done on time (at their own past
    instants, through `Store.act`), officers out on the dispatched ones, two just overdue."""
    now = now or datetime.now(UTC)
    gen = Generator(store.d, rng)
    for state, clock, lo, hi in _plan(rng, n):
        rec = gen.record(now)
        budget = store.clocks.budgets(rec["category"], rec["priority"])
        age = rng.uniform(lo, hi) * (budget[clock] if clock else 1)
        received = now - timedelta(seconds=age)
        rec["received_at"] = received.isoformat()
        ingest_records(store, [(None, rec)], origin="demo", actor=COLLEAGUE, now=received)
        ext = rec["external_id"]
        case = next((c for c in store.cases("open") if c.external_id == ext), None)
        for move, at in stage_times(rng, received, state, budget) if case else ():
            if at >= now:
                break
            try:
                to = best_assignee(store, case) if move == "dispatch" else None
                case = store.act(case.id, move, COLLEAGUE, to=to, now=at)
            except Refused:
                break


def best_assignee(store: Store, case: CaseView) -> str | None:
    """Whom a colleague sends: the dispatch panel's top choice (competence first)."""
    from tafang.console.i18n import Strings
    from tafang.console.ranking import rank

    choices = rank(case, store.officers(), store.d, Strings("zh"))
    free = [c for c in choices if c.kind != "officer" or c.rank[1] == 0]
    return free[0].code if free else None


class DemoFeed(threading.Thread):
    """The simulated world: new reports, officers' progress and the SLA sweep."""

    def __init__(self, store: Store, options: DemoOptions) -> None:
        super().__init__(name="tafang-demo-feed", daemon=True)
        self.store = store
        self.o = options
        self.rng = random.Random(options.seed)
        self.gen = Generator(store.d, self.rng)
        self._halt = threading.Event()
        self.policy: Policy | None = None
        if options.sweep:
            clocks = store.clocks
            self.policy = clocks if isinstance(clocks, Policy) else Policy(store.d)
        self.started_at = datetime.now(UTC)
        self.feed_actor = Actor("demo-feed", "demo")
        self.delays: dict[tuple[int, str], float] = {}

    def stop(self, timeout: float = 2.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        every = 60.0 / self.o.speed if self.o.speed > 0 else 1e9
        next_case = 0.0
        clock = 0.0
        step = 0.5
        while not self._halt.wait(step):
            clock += step
            try:
                now = datetime.now(UTC)
                if clock >= next_case:
                    post(self.store, self.gen.record(now), self.feed_actor)
                    next_case = clock + self.rng.expovariate(1.0 / every)
                if self.o.progress and int(clock * 2) % 4 == 0:
                    self.progress(now)
                if self.policy is not None and int(clock * 2) % 2 == 0:
                    sweep(self.store, self.policy, now)
                    self.heartbeat(now)
            except Exception:  # the demo must never take the console down
                continue

    def progress(self, now: datetime) -> None:
        """Colleagues' work: each open case takes its next step once its own delay has
        passed (mostly inside the clocks; one in twenty late), so cases flow to closure."""
        for c in self.store.cases("open"):
            step = NEXT.get(c.status)
            if step is None:
                continue
            move, since, (lo, hi) = step
            start = getattr(c, since) or c.received_at
            wait = self.delays.setdefault((c.id, move), self._delay(lo, hi))
            if (now - start).total_seconds() < wait:
                continue
            actor = CHECKER if move == "close" else COLLEAGUE
            try:
                to = best_assignee(self.store, c) if move == "dispatch" else None
                if move == "dispatch" and to is None:
                    continue  # nobody free: it waits, as it would
                self.store.act(c.id, move, actor, to=to, expected_version=c.version, now=now)
            except Refused:
                self.delays[(c.id, move)] = wait + 30  # the user moved it, or a race: later

    def _delay(self, lo: float, hi: float) -> float:
        late = self.rng.random() < 0.05
        return self.rng.uniform(hi, hi * 1.5) if late else self.rng.uniform(lo, hi)

    def heartbeat(self, now: datetime) -> None:
        """The in-process sweep stands in for the daemon, so the header says so."""
        write_heartbeat(
            self.store.engine,
            now=now,
            started_at=self.started_at,
            info={"demo": "in-process sweep"},
        )
