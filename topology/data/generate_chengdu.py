"""Writes chengdu.yaml: real district-level units, synthetic but Chengdu-sized streets below them.

Run `python topology/data/generate_chengdu.py` after changing it; the output is
deterministic (a fixed seed, no clock), so a re-run on unchanged code is a no-op diff.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any

import yaml

VERSION = "chengdu-2024.1"
SEED = 2022
OUTPUT = Path(__file__).with_name("chengdu.yaml")

# (GB/T 2260 code, name, character, centroid lat, lon, number of streets/towns).
# The three functional zones have no GB/T 2260 code: 510190-510192 are this file's own.
# "urban" districts have 街道 and 社区; "county" units mostly 镇 and 村; "mixed" both.
DISTRICTS: list[tuple[str, str, str, float, float, int]] = [
    ("510104", "锦江区", "urban", 30.6570, 104.0830, 11),
    ("510105", "青羊区", "urban", 30.6740, 104.0620, 11),
    ("510106", "金牛区", "urban", 30.6920, 104.0520, 13),
    ("510107", "武侯区", "urban", 30.6420, 104.0430, 12),
    ("510108", "成华区", "urban", 30.6600, 104.1020, 11),
    ("510112", "龙泉驿区", "mixed", 30.5560, 104.2750, 12),
    ("510113", "青白江区", "mixed", 30.8790, 104.2510, 9),
    ("510114", "新都区", "mixed", 30.8240, 104.1590, 13),
    ("510115", "温江区", "mixed", 30.6820, 103.8560, 9),
    ("510116", "双流区", "mixed", 30.5740, 103.9240, 9),
    ("510117", "郫都区", "mixed", 30.7950, 103.9020, 11),
    ("510118", "新津区", "mixed", 30.4100, 103.8110, 8),
    ("510121", "金堂县", "county", 30.8620, 104.4120, 15),
    ("510129", "大邑县", "county", 30.5870, 103.5210, 11),
    ("510131", "蒲江县", "county", 30.1960, 103.5060, 8),
    ("510181", "都江堰市", "county", 30.9880, 103.6470, 11),
    ("510182", "彭州市", "county", 30.9900, 103.9580, 13),
    ("510183", "邛崃市", "county", 30.4100, 103.4640, 14),
    ("510184", "崇州市", "county", 30.6300, 103.6730, 15),
    ("510185", "简阳市", "county", 30.4110, 104.5470, 22),
    ("510190", "成都高新区", "urban", 30.5750, 104.0650, 8),
    ("510191", "天府新区成都直管区", "mixed", 30.4200, 104.0700, 6),
    ("510192", "成都东部新区", "county", 30.3900, 104.3800, 12),
]
# Communities of these districts get rectangular outlines; elsewhere only a centroid,
# so that both ways of locating are exercised on the default topology.
WITH_POLYGONS = {"510104", "510105", "510106", "510107", "510108", "510190"}

STREET_WORDS = (
    "春熙 望江 合江 书院 东湖 双桂 狮子山 沙河 牛市口 成龙 柳江 三圣 草堂 少城 府南 光华 "
    "金沙 苏坡 文家 黄田坝 西华 茶店子 营门口 抚琴 驷马桥 荷花池 天回 簇桥 红牌楼 晋阳 "
    "玉林 火车南站 桂溪 芳草 肖家河 华阳 永安 万安 龙泉 大面 十陵 同安 洛带 西河 柏合 "
    "茶店 山泉 城厢 弥牟 大同 清泉 姚渡 福洪 新繁 大丰 三河 斑竹园 军屯 清流 新民场 永宁 "
    "公平 柳城 涌泉 金马 万春 东升 九江 黄水 黄甲 郫筒 犀浦 红光 安德 唐昌 团结 五津 "
    "花源 安西 花桥 宝墩 赵镇 淮口 竹篙 高板 转龙 云顶 晋原 安仁 王泗 新场 悦来 鹤鸣 "
    "鹤山 寿安 大塘 朝阳湖 幸福 灌口 聚源 青城山 玉堂 龙池 天马 天彭 致和 丹景山 龙门山 "
    "临邛 羊安 平乐 夹关 天台山 固驿 崇阳 三江 江源 街子 元通 怀远 白头 隆盛 射洪坝 "
    "石桥 简城 东溪 三星 石盘 平泉 禾丰 贾家 养马 武庙 芦葭 芦家 丹景 新市 施家 江源 "
    "中和 石羊 芳华 合作 肖家 新兴 正兴 籍田 太平 永兴 兴隆 煎茶 文星 雷家 三岔"
).split()
COMMUNITY_WORDS = (
    "红星 东大 和平 新华 光明 太平 福字 水井坊 莲花 锦华 桂花 银杏 芙蓉 玉带 梧桐 "
    "翠竹 清水 白鹭 海棠 青龙 白马 石桥 金桥 高桥 永丰 丰收 先锋 幸福 团结 友谊 "
    "文庙 学府 锦绣 长寿 双林 双桥 五桂 万福 安康 龙湾 凤凰 麒麟 骑龙 天鹅 金鱼 "
    "杨柳 枇杷 荔枝 柑橘 竹林 松林 梅林 兰亭 菊园 荷塘 锦江 沙湾 滨江 东篱 西岭 "
    "南苑 北城 上河 下河 新村 老街 花园 果园 茶园 新民 星光 黎明 朝阳 晨曦 月湾 "
    "石佛 观音 龙泉 三元 九龙 万寿 金光 宝林 铁牛 青杠 槐树 桃源 新桥 古镇 望丛"
).split()

CITY_DEPARTMENTS = [
    ("urban_management", "成都市城市管理委员会"),
    ("water", "成都市水务局"),
    ("transport", "成都市交通运输局"),
    ("police", "成都市公安局"),
    ("traffic_police", "成都市公安局交通管理局"),
    ("emergency", "成都市应急管理局"),
    ("fire_rescue", "成都市消防救援支队"),
    ("ecology", "成都市生态环境局"),
    ("housing", "成都市住房和城乡建设局"),
    ("market_regulation", "成都市市场监督管理局"),
    ("health", "成都市卫生健康委员会"),
    ("planning", "成都市规划和自然资源局"),
    ("parks", "成都市公园城市建设管理局"),
    ("civil_affairs", "成都市民政局"),
    ("gas_utility", "成都燃气集团"),
    ("water_utility", "成都市自来水有限责任公司"),
    ("power_utility", "国网成都供电公司"),
]
DISTRICT_DEPARTMENTS = [
    ("urban_management", "城市管理局"),
    ("water", "水务局"),
    ("transport", "交通运输局"),
    ("police", "公安分局"),
    ("traffic_police", "交警大队"),
    ("emergency", "应急管理局"),
    ("fire_rescue", "消防救援大队"),
    ("ecology", "生态环境局"),
    ("housing", "住房建设局"),
    ("market_regulation", "市场监督管理局"),
    ("health", "卫生健康局"),
    ("planning", "规划和自然资源局"),
    ("parks", "公园城市局"),
    ("civil_affairs", "民政局"),
    ("gas_utility", "燃气分公司"),
    ("water_utility", "供水分公司"),
    ("power_utility", "供电分公司"),
]
# (kind, name suffix, share of streets that have one). Every district-level unit has the
# full set of bureaus; streets have the integrated teams, but only some have a planning and
# construction office, so housing matters there go to the district (no_department_at_level).
STREET_DEPARTMENTS = [
    ("urban_management", "综合行政执法队", 1.0),
    ("police", "派出所", 1.0),
    ("emergency", "应急管理办公室", 1.0),
    ("market_regulation", "市场监管所", 1.0),
    ("health", "社区卫生服务中心", 1.0),
    ("civil_affairs", "社会事务办公室", 1.0),
    ("water", "水务站", 1.0),
    ("traffic_police", "交警中队", 1.0),
    ("fire_rescue", "微型消防站", 1.0),
    ("housing", "规划建设办公室", 0.5),
]

# code, name, family, lead, co-handlers, lowest, severity floors, emergency floor,
# (accept, resolve[, emergency accept, emergency resolve]), (radius m, window min), keywords
Category = tuple[
    str,
    str,
    str,
    str,
    list[str],
    str,
    dict[str, str],
    str | None,
    tuple[int, ...],
    tuple[int, int],
    list[str],
]
CATEGORIES: list[Category] = [
    (
        "garbage_exposed",
        "垃圾暴露",
        "environment",
        "urban_management",
        [],
        "micro",
        {},
        None,
        (30, 240),
        (100, 720),
        ["垃圾", "暴露垃圾", "垃圾堆", "garbage", "rubbish", "trash"],
    ),
    (
        "street_vending",
        "占道经营",
        "environment",
        "urban_management",
        [],
        "micro",
        {},
        None,
        (30, 240),
        (100, 240),
        ["占道", "摆摊", "流动摊贩", "street vendor", "vending"],
    ),
    (
        "illegal_advertising",
        "违规广告",
        "environment",
        "urban_management",
        [],
        "small",
        {},
        None,
        (120, 2880),
        (100, 10080),
        ["小广告", "牛皮癣", "违规广告", "illegal ad", "flyer"],
    ),
    (
        "construction_waste",
        "建筑垃圾乱倒",
        "environment",
        "urban_management",
        ["housing"],
        "small",
        {},
        None,
        (60, 1440),
        (300, 1440),
        ["建筑垃圾", "渣土", "construction waste"],
    ),
    (
        "illegal_construction",
        "违法建设",
        "housing",
        "urban_management",
        ["planning"],
        "small",
        {},
        None,
        (240, 10080),
        (50, 43200),
        ["违建", "违章建筑", "私搭乱建", "illegal building"],
    ),
    (
        "pothole",
        "道路坑洼",
        "municipal",
        "urban_management",
        [],
        "small",
        {},
        None,
        (60, 1440),
        (50, 4320),
        ["坑洼", "坑", "路面破损", "pothole", "road damage"],
    ),
    (
        "manhole_cover_missing",
        "井盖缺失",
        "municipal",
        "urban_management",
        [],
        "small",
        {"III": "medium"},
        None,
        (15, 240),
        (30, 1440),
        ["井盖", "窨井", "manhole", "missing cover"],
    ),
    (
        "manhole_cover_displaced",
        "井盖移位",
        "municipal",
        "urban_management",
        [],
        "small",
        {},
        None,
        (30, 480),
        (30, 720),
        ["井盖移位", "井盖松动", "manhole tilt", "loose cover"],
    ),
    (
        "streetlight_out",
        "路灯不亮",
        "municipal",
        "urban_management",
        ["power_utility"],
        "small",
        {},
        None,
        (240, 4320),
        (200, 4320),
        ["路灯", "灯不亮", "street light", "streetlight"],
    ),
    (
        "road_collapse",
        "路面塌陷",
        "municipal",
        "urban_management",
        ["housing", "traffic_police"],
        "medium",
        {"II": "big"},
        "medium",
        (10, 480, 5, 240),
        (100, 360),
        ["塌陷", "地陷", "路面下沉", "road collapse", "sinkhole"],
    ),
    (
        "waterlogging",
        "积水内涝",
        "flooding",
        "water",
        ["urban_management", "traffic_police"],
        "small",
        {"II": "medium", "I": "big"},
        "medium",
        (15, 240, 5, 120),
        (500, 180),
        ["积水", "内涝", "淹水", "水淹", "waterlogging", "flooding", "flooded"],
    ),
    (
        "river_flood",
        "河道汛情",
        "flooding",
        "water",
        ["emergency"],
        "medium",
        {"II": "big"},
        "big",
        (10, 360, 5, 180),
        (2000, 360),
        ["河水上涨", "漫堤", "汛情", "river flood"],
    ),
    (
        "water_main_burst",
        "供水管网爆管",
        "flooding",
        "water",
        ["water_utility", "traffic_police"],
        "medium",
        {"I": "big"},
        None,
        (15, 480),
        (300, 360),
        ["爆管", "水管爆裂", "自来水管", "water main", "burst pipe"],
    ),
    (
        "water_outage",
        "停水",
        "utilities",
        "water_utility",
        [],
        "medium",
        {},
        None,
        (30, 720),
        (1000, 720),
        ["停水", "没水", "水压低", "no water", "water outage"],
    ),
    (
        "sewage_overflow",
        "污水外溢",
        "flooding",
        "water",
        ["urban_management"],
        "small",
        {},
        None,
        (30, 480),
        (200, 720),
        ["污水", "化粪池", "冒水", "sewage", "overflow"],
    ),
    (
        "gas_leak",
        "燃气泄漏",
        "hazard",
        "emergency",
        ["gas_utility", "fire_rescue", "police"],
        "medium",
        {"II": "big"},
        "medium",
        (5, 120),
        (200, 120),
        ["燃气", "煤气", "天然气", "漏气", "gas leak", "gas smell"],
    ),
    (
        "fire",
        "火灾",
        "hazard",
        "fire_rescue",
        ["emergency", "police", "health"],
        "medium",
        {"II": "big"},
        None,
        (2, 240),
        (300, 120),
        ["火灾", "起火", "着火", "冒烟", "fire", "smoke", "burning"],
    ),
    (
        "hazardous_chemicals",
        "危险化学品事故",
        "hazard",
        "emergency",
        ["fire_rescue", "ecology", "police"],
        "medium",
        {"II": "big"},
        "big",
        (5, 240),
        (1000, 240),
        ["危化品", "化学品", "泄漏", "hazardous chemical", "chemical spill"],
    ),
    (
        "elevator_entrapment",
        "电梯困人",
        "hazard",
        "market_regulation",
        ["property", "fire_rescue"],
        "small",
        {},
        None,
        (5, 60),
        (30, 60),
        ["电梯", "困人", "被困", "elevator", "lift", "trapped"],
    ),
    (
        "structural_danger",
        "房屋结构安全隐患",
        "housing",
        "housing",
        ["emergency"],
        "small",
        {"III": "medium", "I": "big"},
        "medium",
        (30, 1440, 10, 480),
        (100, 1440),
        ["裂缝", "危房", "墙体开裂", "structural crack", "unsafe building"],
    ),
    (
        "landslide",
        "地质灾害",
        "hazard",
        "planning",
        ["emergency"],
        "medium",
        {"II": "big"},
        "big",
        (10, 480, 5, 240),
        (1000, 360),
        ["滑坡", "泥石流", "崩塌", "landslide", "mudslide"],
    ),
    (
        "power_outage",
        "停电",
        "utilities",
        "power_utility",
        [],
        "medium",
        {"II": "big"},
        None,
        (30, 480),
        (1000, 480),
        ["停电", "断电", "没电", "power cut", "blackout"],
    ),
    (
        "traffic_signal_failure",
        "信号灯故障",
        "traffic",
        "traffic_police",
        ["transport"],
        "medium",
        {},
        None,
        (15, 240),
        (100, 240),
        ["红绿灯", "信号灯", "traffic light", "signal"],
    ),
    (
        "traffic_congestion",
        "交通拥堵",
        "traffic",
        "traffic_police",
        ["transport"],
        "medium",
        {"II": "big"},
        None,
        (10, 120),
        (500, 60),
        ["堵车", "拥堵", "交通拥堵", "traffic jam"],
    ),
    (
        "illegal_parking",
        "违法停车",
        "traffic",
        "traffic_police",
        [],
        "small",
        {},
        None,
        (30, 240),
        (100, 240),
        ["乱停", "违停", "占用车位", "illegal parking"],
    ),
    (
        "traffic_accident",
        "交通事故",
        "traffic",
        "traffic_police",
        ["health"],
        "small",
        {"III": "medium", "II": "big"},
        None,
        (5, 240),
        (200, 120),
        ["车祸", "交通事故", "撞车", "car crash", "traffic accident"],
    ),
    (
        "noise",
        "噪声扰民",
        "public_safety",
        "police",
        [],
        "micro",
        {},
        None,
        (30, 480),
        (150, 240),
        ["噪音", "噪声", "扰民", "吵闹", "noise", "noisy", "loud"],
    ),
    (
        "public_security",
        "治安问题",
        "public_safety",
        "police",
        [],
        "small",
        {"III": "medium"},
        None,
        (15, 480),
        (200, 240),
        ["治安", "打架", "盗窃", "fight", "theft"],
    ),
    (
        "crowd_gathering",
        "人员聚集",
        "public_safety",
        "police",
        ["emergency"],
        "medium",
        {"II": "big"},
        "big",
        (5, 240),
        (500, 120),
        ["聚集", "围堵", "人群", "crowd", "gathering"],
    ),
    (
        "air_pollution",
        "大气污染",
        "ecology",
        "ecology",
        [],
        "medium",
        {"II": "big"},
        None,
        (60, 1440),
        (1000, 720),
        ["空气污染", "异味", "粉尘", "air pollution", "dust", "odour"],
    ),
    (
        "water_pollution",
        "水体污染",
        "ecology",
        "ecology",
        ["water"],
        "medium",
        {"II": "big"},
        None,
        (60, 1440),
        (1000, 1440),
        ["水体污染", "河水变色", "死鱼", "water pollution"],
    ),
    (
        "open_burning",
        "露天焚烧",
        "ecology",
        "urban_management",
        ["ecology"],
        "small",
        {},
        None,
        (30, 240),
        (300, 240),
        ["焚烧", "烧垃圾", "秸秆", "open burning"],
    ),
    (
        "food_safety",
        "食品安全",
        "market",
        "market_regulation",
        ["health"],
        "small",
        {"III": "medium", "II": "big"},
        None,
        (30, 1440),
        (500, 2880),
        ["食品", "食物中毒", "过期", "food safety", "food poisoning"],
    ),
    (
        "price_complaint",
        "价格投诉",
        "market",
        "market_regulation",
        [],
        "small",
        {},
        None,
        (240, 7200),
        (100, 10080),
        ["价格", "乱收费", "宰客", "overcharge", "price"],
    ),
    (
        "public_health_event",
        "公共卫生事件",
        "health",
        "health",
        ["emergency"],
        "medium",
        {"III": "big"},
        "big",
        (10, 480, 5, 240),
        (2000, 1440),
        ["传染病", "疫情", "发热", "epidemic", "outbreak"],
    ),
    (
        "tree_fallen",
        "树木倒伏",
        "environment",
        "parks",
        ["urban_management"],
        "small",
        {},
        None,
        (30, 480),
        (100, 360),
        ["倒树", "树木倒伏", "断枝", "fallen tree"],
    ),
    (
        "neighbour_dispute",
        "邻里纠纷",
        "social",
        "police",
        ["residents_committee"],
        "micro",
        {},
        None,
        (60, 2880),
        (50, 1440),
        ["纠纷", "邻居", "矛盾", "dispute", "neighbour"],
    ),
    (
        "elderly_assistance",
        "困难群众帮扶",
        "social",
        "civil_affairs",
        ["residents_committee"],
        "small",
        {},
        None,
        (120, 4320),
        (50, 4320),
        ["独居老人", "救助", "低保", "elderly", "welfare"],
    ),
    (
        "property_dispute",
        "物业纠纷",
        "housing",
        "housing",
        ["property", "residents_committee"],
        "small",
        {},
        None,
        (240, 7200),
        (100, 10080),
        ["物业", "物业费", "小区管理", "property management"],
    ),
    (
        "general",
        "其他事项",
        "other",
        "urban_management",
        ["residents_committee"],
        "micro",
        {},
        None,
        (60, 4320),
        (50, 60),
        [],
    ),
]
SENSOR_TYPES = [
    ("water_level", "waterlogging", True, "积水水位计", "cm"),
    ("river_level", "river_flood", True, "河道水位计", "m"),
    ("gas_concentration", "gas_leak", False, "可燃气体探测器", "%LEL"),
    ("manhole_tilt", "manhole_cover_displaced", True, "井盖倾角传感器", "deg"),
    ("smoke", "fire", False, "烟感探测器", "dB/m"),
    ("structural_strain", "structural_danger", True, "结构应变计", "με"),
    ("ground_displacement", "landslide", True, "地表位移监测仪", "mm"),
    ("noise_level", "noise", True, "噪声监测仪", "dB"),
    ("air_quality", "air_pollution", True, "空气质量微站", "µg/m³"),
    ("pipe_pressure", "water_main_burst", True, "管网压力计", "MPa"),
    ("traffic_flow", "traffic_congestion", False, "交通流量检测器", "veh/h"),
    ("elevator_alarm", "elevator_entrapment", False, "电梯困人报警器", ""),
]


def _box_half_size(lat: float, lon: float) -> float:
    """Half the side of a district's square: small where districts crowd the centre."""
    nearest = min(
        math.hypot(lat - other_lat, lon - other_lon)
        for _, _, _, other_lat, other_lon, _ in DISTRICTS
        if (other_lat, other_lon) != (lat, lon)
    )
    return min(0.45 * nearest, 0.12)


def _cells(count: int, lat: float, lon: float, half: float) -> list[tuple[float, float, float]]:
    """`count` square cells (centre lat, centre lon, half side) tiling a square."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    side = 2 * half / max(columns, rows)
    cells = []
    for index in range(count):
        row, column = divmod(index, columns)
        cells.append(
            (
                round(lat - half + side * (row + 0.5), 6),
                round(lon - half + side * (column + 0.5), 6),
                side / 2,
            )
        )
    return cells


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        if isinstance(value, str):
            parts.append(
                f'{key}: "{value}"'
                if key in ("code", "parent", "area", "id")
                else f"{key}: {value}"
            )
        elif isinstance(value, list):
            parts.append(f"{key}: {_points(value)}")
        else:
            parts.append(f"{key}: {value}")
    return "  - {" + ", ".join(parts) + "}"


def _points(points: list[Any]) -> str:
    if points and isinstance(points[0], float):
        return f"[{points[0]}, {points[1]}]"
    return "[" + ", ".join(_points(point) for point in points) + "]"


def generate() -> str:
    rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic data, not secrets
    areas: list[str] = []
    departments: list[str] = []
    centres: list[str] = []
    counts = {"street": 0, "community": 0, "grid": 0}

    def department(area: str, kind: str, name: str) -> None:
        departments.append(
            _flow({"id": f"{area}.{kind}", "name": name, "kind": kind, "area": area})
        )

    areas.append(
        _flow(
            {"code": "510100", "name": "成都市", "level": "city", "centroid": [30.6598, 104.0633]}
        )
    )
    centres.append(_flow({"id": "centre:510100", "name": "智慧蓉城运行中心", "area": "510100"}))
    for kind, name in CITY_DEPARTMENTS:
        department("510100", kind, name)

    for code, name, character, lat, lon, street_count in DISTRICTS:
        areas.append(
            _flow(
                {
                    "code": code,
                    "name": name,
                    "level": "district",
                    "parent": "510100",
                    "centroid": [lat, lon],
                }
            )
        )
        centres.append(_flow({"id": f"centre:{code}", "name": f"{name}运行中心", "area": code}))
        for kind, suffix in DISTRICT_DEPARTMENTS:
            department(code, kind, f"{name}{suffix}")
        street_words = rng.sample(STREET_WORDS, street_count)
        street_cells = _cells(street_count, lat, lon, _box_half_size(lat, lon))
        for street_index, (word, (s_lat, s_lon, s_half)) in enumerate(
            zip(street_words, street_cells, strict=True), start=1
        ):
            street = f"{code}{street_index:03d}"
            is_town = character == "county" or (character == "mixed" and street_index > 5)
            street_name = f"{word}{'镇' if is_town else '街道'}"
            counts["street"] += 1
            areas.append(
                _flow(
                    {
                        "code": street,
                        "name": street_name,
                        "level": "street",
                        "parent": code,
                        "centroid": [s_lat, s_lon],
                    }
                )
            )
            centres.append(
                _flow({"id": f"centre:{street}", "name": f"{street_name}运行中心", "area": street})
            )
            for kind, suffix, share in STREET_DEPARTMENTS:
                if share >= 1.0 or rng.random() < share:
                    department(street, kind, f"{word}{suffix}")
            community_count = rng.randint(8, 15)
            community_words = rng.sample(COMMUNITY_WORDS, community_count)
            community_cells = _cells(community_count, s_lat, s_lon, s_half * 0.95)
            for community_index, (c_word, (c_lat, c_lon, c_half)) in enumerate(
                zip(community_words, community_cells, strict=True), start=1
            ):
                community = f"{street}{community_index:03d}"
                is_village = is_town and community_index > 2
                community_name = f"{c_word}{'村' if is_village else '社区'}"
                counts["community"] += 1
                entry: dict[str, Any] = {
                    "code": community,
                    "name": community_name,
                    "level": "community",
                    "parent": street,
                    "centroid": [c_lat, c_lon],
                }
                if code in WITH_POLYGONS:
                    h = round(c_half * 0.98, 6)
                    entry["polygon"] = [
                        [round(c_lat - h, 6), round(c_lon - h, 6)],
                        [round(c_lat - h, 6), round(c_lon + h, 6)],
                        [round(c_lat + h, 6), round(c_lon + h, 6)],
                        [round(c_lat + h, 6), round(c_lon - h, 6)],
                    ]
                areas.append(_flow(entry))
                committee = "村民委员会" if is_village else "居民委员会"
                department(community, "residents_committee", f"{community_name}{committee}")
                department(community, "police", f"{community_name}警务室")
                if not is_village:
                    # Villages have no urban-management station: the town's team serves them.
                    department(community, "urban_management", f"{community_name}城管工作站")
                    if rng.random() < 0.8:
                        department(community, "property", f"{community_name}物业服务中心")
                for grid_index in range(1, rng.randint(2, 3) + 1):
                    counts["grid"] += 1
                    offset = c_half * 0.5 * (1 if grid_index % 2 else -1)
                    areas.append(
                        _flow(
                            {
                                "code": f"{community}{grid_index:03d}",
                                "name": f"{community_name}第{grid_index}网格",
                                "level": "grid",
                                "parent": community,
                                "centroid": [
                                    round(c_lat + offset, 6),
                                    round(c_lon + offset / 2, 6),
                                ],
                            }
                        )
                    )

    catalogue: dict[str, Any] = {"categories": [], "sensor_types": []}
    for code, name, family, lead, co, lowest, floors, emergency, sla, corr, keywords in CATEGORIES:
        category: dict[str, Any] = {"code": code, "name": name, "family": family, "lead_kind": lead}
        if co:
            category["co_handler_kinds"] = co
        category["lowest_level"] = lowest
        if floors:
            category["severity_floor"] = floors
        if emergency:
            category["emergency_floor"] = emergency
        category["sla"] = {"accept_minutes": sla[0], "resolve_minutes": sla[1]}
        if len(sla) == 4:
            category["sla"]["emergency"] = {"accept_minutes": sla[2], "resolve_minutes": sla[3]}
        category["correlation"] = {"radius_m": corr[0], "window_minutes": corr[1]}
        category["keywords"] = keywords
        catalogue["categories"].append(category)
    for sensor_type, category_code, verify, sensor_name, unit in SENSOR_TYPES:
        catalogue["sensor_types"].append(
            {
                "sensor_type": sensor_type,
                "category_code": category_code,
                "needs_verification": verify,
                "name": sensor_name,
                "unit": unit,
            }
        )

    header = [
        "# Chengdu topology. GENERATED by topology/data/generate_chengdu.py - edit that, not this.",
        "# District-level codes are GB/T 2260, except the functional zones 成都高新区 (510190),",
        "# 天府新区成都直管区 (510191) and 成都东部新区 (510192), which have none. Streets,",
        "# communities and grids below them are synthetic but Chengdu-sized:",
        f"# {counts['street']} streets/towns, {counts['community']} communities/villages, "
        f"{counts['grid']} grids.",
        f"version: {VERSION}",
        "name: 成都市",
        "description: 成都市 with its 23 district-level units; synthetic streets, communities "
        "and grids.",
    ]
    body = yaml.safe_dump(
        catalogue, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None
    )
    return "\n".join(
        [*header, "areas:", *areas, "departments:", *departments, "centres:", *centres, body]
    )


def main() -> None:
    OUTPUT.write_text(generate(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUTPUT}\n")


if __name__ == "__main__":
    main()
