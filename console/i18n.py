"""UI strings in Chinese and English.

Dispatchers work in Chinese; the English table lets a newcomer or a reviewer follow along.
Only the console's own words live here; names of channels, categories and cells come from
the deployment (with their `name_en` when the language is English).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from tafang.store.cases import Refused

Lang = Literal["zh", "en"]

_ZH: dict[str, str] = {
    "app.title": "塔防 · 调度台",
    "status.new": "待受理",
    "status.acknowledged": "已受理",
    "status.dispatched": "已派遣",
    "status.on_scene": "处置中",
    "status.handled": "已处置",
    "status.held": "挂账",
    "status.closed": "已结案",
    "status.void": "已作废",
    "status.merged": "已合并",
    "refused.not_found": "案件 {id} 不存在",
    "refused.unknown_action": "未知操作 {action}",
    "refused.needs_reason": "{action}需要填写原因（记入全过程记录）",
    "refused.needs_supervisor": "{action}需要带班领导权限，{operator} 不是带班领导",
    "refused.illegal": (
        "案件 {id} 当前为「{status}」，不能{action}；{action}要求案件为「{allowed}」"
    ),
    "refused.already_with": "案件 {id} 已由 {assignee} 处置",
    "refused.off_duty": "队员 {officer} 休息中，请另选",
    "refused.merge_needs_target": "合并需要指定保留的案件",
    "refused.merge_self": "案件 {id} 不能合并到自身",
    "refused.merge_closed": "案件 {id} 为「{status}」，只能合并到在办案件",
    "refused.top_level": "案件 {id} 已上报至指挥中心（最高一级）",
    "refused.needs_assignee": "派遣需要指定队员或中队",
    "refused.unknown_assignee": "本部署中没有队员、中队或合作单位「{assignee}」",
    "refused.conflict": (
        "案件 {id} 已于 {at} 被 {by}（终端 {terminal}）修改，现为「{status}」，请核对后再操作"
    ),
    "agency.police": "公安",
    "agency.enforcement": "综合执法",
    "agency.traffic": "交警",
    "agency.market": "市场监管",
    "agency.emergency": "应急",
    "officer.available": "空闲",
    "officer.en_route": "出警",
    "officer.on_scene": "处置中",
    "officer.off_duty": "休息",
    "clock.respond": "响应",
    "clock.dispatch": "派遣",
    "clock.arrive": "到场",
    "clock.resolve": "处置",
    "action.ack": "受理",
    "action.dispatch": "派遣",
    "action.arrive": "到场",
    "action.handle": "处置完毕",
    "action.close": "结案",
    "action.hold": "挂账",
    "action.resume": "恢复",
    "action.return": "回退",
    "action.rework": "返工",
    "action.void": "作废",
    "action.merge": "合并",
    "action.escalate": "上报",
    "action.supervise": "督办",
    "action.open": "案卷",
    "action.new": "新建",
    "action.filter": "筛选",
    "action.command": "命令",
    "action.help": "帮助",
    "action.map": "地图/队列",
    "action.clear": "清除筛选",
    "action.quit": "退出",
    "header.operator": "调度员",
    "header.open": "在办",
    "header.at_risk": "将超时",
    "header.breached": "已超时",
    "header.compliance": "今日1-3-5达标",
    "header.daemon_ok": "守护进程正常",
    "header.daemon_down": "守护进程停止",
    "header.daemon_down_since": "守护进程停止 自 {since}",
    "header.store_down": "数据库不可达 自 {since}",
    "header.filter": "筛选",
    "header.loading": "加载中…",
    "reason.prompt": "{action} 案件 {id}：请输入原因（记入执法记录）",
    "merge.prompt": "合并案件 {id} 到哪个案件？（输入案件号）",
    "assign.title": "派遣案件 {id}：{title}",
    "assign.filter": "输入筛选，回车选第一项，Esc 取消",
    "assign.none": "没有可派遣的人员",
    "assign.same_circle": "同圈 {circle}",
    "assign.group": "{group}",
    "assign.load": "在手 {n} 件",
    "assign.distance": "相距 {n} 格",
    "assign.squad": "中队",
    "assign.partner": "合作企业",
    "done": "案件 {id}：{action} 完成 → {status}",
    "refused": "案件 {id}：{action} 被拒绝",
    "conflict": "案件 {id}：被他人抢先修改",
    "no_case": "没有选中的案件",
    "created": "已新建案件 {id}",
    "breach": "案件 {id} 超时：{title}",
    "form.title": "新建电话来件",
    "form.case_title": "标题",
    "form.description": "描述",
    "form.category": "类别",
    "form.grid": "网格（选择或输入标签如 N3-07）",
    "form.priority": "优先级",
    "form.location": "地点",
    "form.reporter": "报告人",
    "form.save": "保存 (ctrl+s)",
    "form.cancel": "取消 (esc)",
    "form.need_title": "需要标题或描述",
    "form.bad_grid": "没有这个网格：{grid}",
    "filter.title": "筛选队列",
    "filter.status": "状态",
    "filter.channel": "渠道",
    "filter.circle": "执法圈",
    "filter.text": "文字",
    "filter.any": "全部",
    "filter.apply": "应用 (回车)",
    "field.title": "标题",
    "field.description": "描述",
    "field.status": "状态",
    "field.source": "渠道",
    "field.external_id": "来源编号",
    "field.category": "类别",
    "field.grid": "网格",
    "field.location": "地点",
    "field.priority": "优先级",
    "field.reporter": "报告人",
    "field.received_at": "接收时间",
    "field.assignee": "处置人",
    "field.escalation": "升级层级",
    "field.supervised": "督办",
    "field.triage": "待分拣",
    "field.version": "版本",
    "field.raw": "原始值",
    "field.at": "时间",
    "field.action": "操作",
    "field.operator": "操作员",
    "field.terminal": "终端",
    "field.detail": "详情",
    "action.ingest": "接入",
    "action.create": "新建",
    "action.merged_in": "并入",
    "action.note": "备注",
    "action.reassign": "改派",
    "action.reject": "拒收",
    "level.0": "网格",
    "level.1": "执法圈",
    "level.2": "应急圈",
    "level.3": "风险圈",
    "level.4": "指挥中心",
    "case.title": "案卷 {id}",
    "case.timeline": "全过程记录",
    "help.title": "快捷键",
    "help.command": "命令行（按 : 进入）",
    "command.placeholder": "命令：a 1234 受理 · d 1234 2-03 派遣 · o 1234 打开 · f 文字 筛选",
    "command.unknown": "不认识的命令：{text}",
    "command.usage": "用法：{usage}",
    "queue.empty": "没有案件",
    "panel.partners": "合作企业",
    "priority.normal": "一般",
    "priority.urgent": "紧急",
    "priority.critical": "特急",
    "cell.chosen": "网格 {label}：{n} 件",
}

_EN: dict[str, str] = {
    "agency.police": "police",
    "agency.enforcement": "law enf.",
    "agency.traffic": "traffic",
    "agency.market": "market",
    "agency.emergency": "emergency",
    "app.title": "Tafang · dispatch",
    "status.new": "new",
    "status.acknowledged": "acked",
    "status.dispatched": "dispatched",
    "status.on_scene": "on scene",
    "status.handled": "handled",
    "status.held": "on hold",
    "status.closed": "closed",
    "status.void": "void",
    "status.merged": "merged",
    "officer.available": "available",
    "officer.en_route": "en route",
    "officer.on_scene": "on scene",
    "officer.off_duty": "off duty",
    "clock.respond": "respond",
    "clock.dispatch": "dispatch",
    "clock.arrive": "arrive",
    "clock.resolve": "resolve",
    "action.ack": "Acknowledge",
    "action.dispatch": "Dispatch",
    "action.arrive": "Arrive",
    "action.handle": "Handled",
    "action.close": "Close",
    "action.hold": "Hold",
    "action.resume": "Resume",
    "action.return": "Return",
    "action.rework": "Rework",
    "action.void": "Void",
    "action.merge": "Merge",
    "action.escalate": "Escalate",
    "action.supervise": "Supervise",
    "action.open": "Case",
    "action.new": "New",
    "action.filter": "Filter",
    "action.command": "Command",
    "action.help": "Help",
    "action.map": "Map/queue",
    "action.clear": "Clear filter",
    "action.quit": "Quit",
    "header.operator": "operator",
    "header.open": "open",
    "header.at_risk": "at risk",
    "header.breached": "breached",
    "header.compliance": "1-3-5 today",
    "header.daemon_ok": "daemon ok",
    "header.daemon_down": "daemon down",
    "header.daemon_down_since": "daemon down since {since}",
    "header.store_down": "store unreachable since {since}",
    "header.filter": "filter",
    "header.loading": "loading…",
    "reason.prompt": "{action} case {id}: give the reason (it goes on the record)",
    "merge.prompt": "Merge case {id} into which case? (case number)",
    "assign.title": "Dispatch case {id}: {title}",
    "assign.filter": "type to filter, Enter takes the top one, Esc cancels",
    "assign.none": "nobody to dispatch to",
    "assign.same_circle": "same circle {circle}",
    "assign.group": "{group}",
    "assign.load": "{n} in hand",
    "assign.distance": "{n} cells away",
    "assign.squad": "squad",
    "assign.partner": "partner",
    "done": "case {id}: {action} done → {status}",
    "refused": "case {id}: {action} refused",
    "conflict": "case {id}: someone else changed it first",
    "no_case": "no case selected",
    "created": "created case {id}",
    "breach": "case {id} breached: {title}",
    "form.title": "New phone report",
    "form.case_title": "Title",
    "form.description": "Description",
    "form.category": "Category",
    "form.grid": "Grid (choose, or type a label like N3-07)",
    "form.priority": "Priority",
    "form.location": "Location",
    "form.reporter": "Reporter",
    "form.save": "Save (ctrl+s)",
    "form.cancel": "Cancel (esc)",
    "form.need_title": "a title or a description is needed",
    "form.bad_grid": "no such grid cell: {grid}",
    "filter.title": "Filter the queue",
    "filter.status": "Status",
    "filter.channel": "Channel",
    "filter.circle": "Circle",
    "filter.text": "Text",
    "filter.any": "any",
    "filter.apply": "Apply (Enter)",
    "field.title": "title",
    "field.description": "description",
    "field.status": "status",
    "field.source": "channel",
    "field.external_id": "external id",
    "field.category": "category",
    "field.grid": "grid",
    "field.location": "location",
    "field.priority": "priority",
    "field.reporter": "reporter",
    "field.received_at": "received",
    "field.assignee": "assignee",
    "field.escalation": "escalation",
    "field.supervised": "supervised",
    "field.triage": "triage",
    "field.version": "version",
    "field.raw": "raw values",
    "field.at": "at",
    "field.action": "action",
    "field.operator": "operator",
    "field.terminal": "terminal",
    "field.detail": "detail",
    "action.ingest": "ingest",
    "action.create": "create",
    "action.merged_in": "merged in",
    "action.note": "note",
    "action.reassign": "reassign",
    "action.reject": "reject",
    "level.0": "grid",
    "level.1": "enforcement circle",
    "level.2": "emergency circle",
    "level.3": "risk circle",
    "level.4": "command centre",
    "case.title": "Case {id}",
    "case.timeline": "Record",
    "help.title": "Keys",
    "help.command": "Command line (press :)",
    "command.placeholder": "command: a 1234 ack · d 1234 2-03 dispatch · o 1234 open · f text",
    "command.unknown": "unknown command: {text}",
    "command.usage": "usage: {usage}",
    "queue.empty": "no cases",
    "panel.partners": "Partners",
    "priority.normal": "normal",
    "priority.urgent": "urgent",
    "priority.critical": "critical",
    "cell.chosen": "cell {label}: {n} cases",
}

TABLES: dict[str, dict[str, str]] = {"zh": _ZH, "en": _EN}


class Strings:
    """Look up a UI string for one language; unknown keys fall back to English, then the key."""

    def __init__(self, lang: str = "zh") -> None:
        self.lang: Lang = "en" if lang == "en" else "zh"
        self._table = TABLES[self.lang]

    def __call__(self, key: str, **kw: object) -> str:
        s = self._table.get(key) or _EN.get(key) or key
        return s.format(**kw) if kw else s

    def known(self, key: str, default: str) -> str:
        """The string for `key` in this language, or `default` when no table has it."""
        return self._table.get(key) or default

    def refusal(self, e: Refused, tz: tzinfo) -> str:
        """A store refusal in the UI language; English keeps the store's own words."""
        template = self._table.get(f"refused.{e.code}") if e.code else None
        if template is None and not (e.code == "conflict" and self.lang == "en"):
            return str(e)
        p: dict[str, object] = dict(e.params)
        if isinstance(p.get("status"), str):
            p["status"] = self(f"status.{p['status']}")
        if isinstance(p.get("allowed"), list):
            p["allowed"] = "、".join(self(f"status.{x}") for x in p["allowed"])
        if isinstance(p.get("action"), str):
            p["action"] = self.known(f"action.{p['action']}", str(p["action"]))
        if isinstance(p.get("at"), datetime):
            p["at"] = p["at"].astimezone(tz).strftime("%H:%M:%S")
        if template is None:  # English conflict: the store's words, but local time
            return (
                f"case {p['id']} was changed by {p['by']} (terminal {p['terminal']}) "
                f"at {p['at']}; it is now {p['status']} — look again before acting"
            )
        try:
            return template.format(**p)
        except (KeyError, IndexError, ValueError):
            return str(e)

    def pick(self, zh: str, en: str) -> str:
        """A config name in the UI language (English falls back to Chinese when unset)."""
        return en if self.lang == "en" and en else zh
