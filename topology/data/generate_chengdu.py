"""Writes chengdu.yaml: real district-level units, synthetic but Chengdu-sized streets below them.

Run `python topology/data/generate_chengdu.py` after changing it; the output is
deterministic (a fixed seed, no clock), so a re-run on unchanged code is a no-op diff.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VERSION = "chengdu-2026.1"
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
    ("human_resources", "成都市人力资源和社会保障局"),
    ("medical_insurance", "成都市医疗保障局"),
    ("education", "成都市教育局"),
    ("culture_tourism", "成都市文化广电旅游局"),
    ("agriculture", "成都市农业农村局"),
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
    ("human_resources", "人力资源和社会保障局"),
    ("medical_insurance", "医疗保障局"),
    ("education", "教育局"),
    ("culture_tourism", "文化体育和旅游局"),
    ("agriculture", "农业农村局"),
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

DAY = 1440
NON_SPATIAL = (30, 60)
"""Correlation (radius m, window minutes) of a matter that is a person's own (wages, a school
place, a pension): two orders meet only about the very same spot within the hour, so two
citizens' matters are never one case. Reports of two categories of one family meet within the
larger radius and window of the two, so a family holding such a category holds only such
categories; a spatial matter that is no other category's matter has a family of its own."""


@dataclass(frozen=True)
class Category:
    """One category of the catalogue; docs/topology.md explains each field."""

    code: str
    name: str
    family: str
    lead: str
    lowest: str
    sla: tuple[int, ...]  # accept, resolve[, emergency accept, emergency resolve] in minutes
    correlation: tuple[int, int]  # radius m, window minutes
    keywords: str  # separated by 、
    co: tuple[str, ...] = ()
    floors: dict[str, str] = field(default_factory=dict)  # the category's own severity floors
    emergency: str | None = None


# The two-level tree: class code, name, what it covers.
CLASSES: list[tuple[str, str, str]] = [
    ("labour", "劳动和社会保障", "工资、劳动合同、社保、养老金、医保、就业、工伤、人才"),
    ("education", "教育", "入学与学位、收费、校外培训、校园安全、师德、幼儿园"),
    ("health", "卫生健康与食品药品", "医疗服务与纠纷、疫苗、食品药品、妇幼、公共卫生事件"),
    ("housing", "住房和城乡建设", "物业、交房、产权证、拆迁安置、老旧小区、租赁、违建、工地"),
    ("market", "市场监管与消费", "消费纠纷、假货、预付卡、无照经营、广告、网购、电梯、价格"),
    ("transport", "交通运输", "公交、出租车、地铁、停车、道路施工、单车、交通秩序与事故"),
    ("environment", "生态环境", "大气、水、黑臭水体、河道、排污、噪音、油烟、焚烧、养殖"),
    ("urban", "城市管理与市容环卫", "垃圾、占道、广告、道路、井盖、路灯、绿化、公厕、犬只"),
    ("utilities", "公用事业", "供水、供电、燃气、供暖"),
    ("public_security", "公共安全与治安", "治安、诈骗、户籍证件、黄赌毒、聚集、邻里纠纷"),
    ("civil_affairs", "民政与社会救助", "养老、低保救助、残疾人、殡葬、退役军人、婚姻登记"),
    ("emergency", "应急与灾害", "燃气泄漏、火灾、危化品、电梯困人、地灾、汛情、内涝、塌陷"),
    ("culture_tourism", "文化旅游体育", "旅游投诉、文化场馆、体育设施、娱乐场所"),
    ("agriculture", "农业农村", "土地承包、惠农补贴、农村集体事务"),
]

# Each class's categories, in the order the hotline's keyword matching tries them (the first
# category with a keyword in the text wins): a specific one before a generic one of its class
# (施工噪音 before 噪音). The classes themselves go in CLASSES' order. The table is laid out
# by hand, three lines a category (the formatter would give each argument a line of its own).
# fmt: off
CATALOGUE: dict[str, list[Category]] = {
    "labour": [
        Category("wage_arrears", "拖欠工资", "labour", "human_resources", "medium",
                 (60, 5 * DAY), NON_SPATIAL,
                 "拖欠工资、欠薪、讨薪、农民工工资、包工头跑路、工资不发"),
        Category("labour_contract", "劳动合同纠纷", "labour", "human_resources", "medium",
                 (120, 15 * DAY), NON_SPATIAL,
                 "劳动合同、不签合同、违法辞退、试用期、加班费、经济补偿"),
        Category("social_insurance", "社会保险缴纳", "labour", "human_resources", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "社保、五险一金、社保断缴、社保转移、不交社保"),
        Category("pension", "养老金待遇", "labour", "human_resources", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "养老金、退休手续、养老保险待遇、视同缴费年限、退休工资"),
        Category("medical_insurance", "医保报销", "labour", "medical_insurance", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "医保、报销、异地就医、医保卡、门特、居民医保"),
        Category("employment_service", "就业创业服务", "labour", "human_resources", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "就业补贴、创业贷款、技能培训、招聘会、失业金"),
        Category("work_injury", "工伤认定", "labour", "human_resources", "medium",
                 (120, 15 * DAY), NON_SPATIAL,
                 "工伤、工伤认定、伤残鉴定、工伤赔偿"),
        Category("talent_settlement", "人才引进与落户", "labour", "human_resources", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "人才补贴、人才公寓、人才落户、落户政策、人才引进", co=("police",)),
    ],
    "education": [
        Category("school_enrollment", "入学与学位", "education", "education", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "入学、学位、划片、转学、随迁子女"),
        Category("school_fees", "教育乱收费", "education", "education", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "学校乱收费、资料费、强制订购、学校收费"),
        Category("off_campus_training", "校外培训机构", "education", "education", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "培训机构、培训退费、无资质培训、学科类培训、补习班", co=("market_regulation",)),
        Category("school_safety", "校园安全与食堂", "education", "education", "medium",
                 (30, 3 * DAY), NON_SPATIAL,
                 "校园欺凌、学校食堂、校车、上下学安全、校园安全", co=("market_regulation",)),
        Category("teacher_conduct", "教师师德", "education", "education", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "体罚、辱骂学生、老师收礼、有偿家教、师德"),
        Category("kindergarten", "幼儿园", "education", "education", "medium",
                 (60, 7 * DAY), NON_SPATIAL,
                 "幼儿园、普惠园、入园、虐童"),
        Category("student_burden", "课业负担与违规补课", "education", "education", "medium",
                 (240, 7 * DAY), NON_SPATIAL,
                 "作业太多、课业负担、周末补课、违规补课、放假时间"),
    ],
    # "health" is public_health_event's family (2 km, a day): the new matters are "medical".
    "health": [
        Category("public_health_event", "公共卫生事件", "health", "health", "medium",
                 (10, 480, 5, 240), (2000, 1440),
                 "传染病、疫情、发热、epidemic、outbreak", co=("emergency",), floors={"III": "big"},
                 emergency="big"),
        Category("food_safety", "食品安全", "market", "market_regulation", "small",
                 (30, 1440), (500, 2880),
                 "食品、食物中毒、过期、food safety、food poisoning", co=("health",),
                 floors={"III": "medium", "II": "big"}),
        Category("drug_safety", "药品与医疗器械", "medical", "market_regulation", "medium",
                 (60, 7 * DAY), NON_SPATIAL,
                 "假药、药店、医疗器械、保健品、卖药"),
        Category("illegal_medical_practice", "非法行医", "medical", "health", "medium",
                 (60, 7 * DAY), NON_SPATIAL,
                 "黑诊所、无证行医、非法行医、非法医美"),
        Category("medical_dispute", "医疗纠纷", "medical", "health", "medium",
                 (120, 15 * DAY), NON_SPATIAL,
                 "医疗纠纷、误诊、手术事故、医疗事故、医疗赔偿"),
        Category("vaccination", "疫苗接种与疾病防控", "medical", "health", "medium",
                 (60, 3 * DAY), NON_SPATIAL,
                 "疫苗、接种、打疫苗、预防针、核酸"),
        Category("maternal_child_health", "生育与妇幼保健", "medical", "health", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "生育登记、准生证、出生证明、产检、妇幼保健"),
        Category("medical_service", "医疗服务", "medical", "health", "medium",
                 (120, 5 * DAY), NON_SPATIAL,
                 "看病难、医院、挂号、排队、医生态度"),
    ],
    # "housing" is illegal_construction's family (a 30-day window): matters of one compound's
    # shared parts are "residential", a person's own are "housing_affairs".
    "housing": [
        Category("property_fee", "物业费与维修资金", "residential", "housing", "small",
                 (240, 7 * DAY), (100, 3 * DAY),
                 "物业费涨价、维修基金、维修资金、停车管理费、物业费", co=("property",)),
        Category("property_dispute", "物业服务", "housing", "housing", "small",
                 (240, 7200), (100, 10080),
                 "物业、物业费、小区管理、property management",
                 co=("property", "residents_committee")),
        Category("housing_delivery", "延期交房与房屋质量", "housing_delivery", "housing", "medium",
                 (240, 15 * DAY), (200, 3 * DAY),
                 "延期交房、交房、烂尾楼、开发商、房屋质量、货不对板"),
        Category("property_certificate", "不动产权证办理", "housing_affairs", "planning", "medium",
                 (240, 15 * DAY), NON_SPATIAL,
                 "房产证、不动产登记、不动产权证、网签备案"),
        Category("demolition_resettlement", "征地拆迁与安置", "housing_affairs", "housing",
                 "medium",
                 (240, 15 * DAY), NON_SPATIAL,
                 "拆迁、安置房、过渡费、征地、拆迁补偿", co=("planning",)),
        Category("old_community_renovation", "老旧小区改造", "residential", "housing", "small",
                 (240, 15 * DAY), (100, 3 * DAY),
                 "老旧小区改造、加装电梯、外墙脱落、小区改造"),
        Category("rental_housing", "房屋租赁与保障房", "housing_affairs", "housing", "medium",
                 (240, 7 * DAY), NON_SPATIAL,
                 "押金不退、二房东、公租房、群租、租房"),
        Category("illegal_construction", "违法建设", "housing", "urban_management", "small",
                 (240, 10080), (50, 43200),
                 "违建、违章建筑、私搭乱建、illegal building", co=("planning",)),
        Category("structural_danger", "房屋结构安全隐患", "housing", "housing", "small",
                 (30, 1440, 10, 480), (100, 1440),
                 "裂缝、危房、墙体开裂、structural crack、unsafe building", co=("emergency",),
                 floors={"III": "medium", "I": "big"}, emergency="medium"),
        Category("construction_site", "建筑工地管理", "worksite", "housing", "medium",
                 (60, 3 * DAY), (200, DAY),
                 "工地、工地扬尘、工地安全、夜间施工许可", co=("urban_management",)),
    ],
    "market": [
        Category("prepaid_card", "预付卡与商家跑路", "consumer", "market_regulation", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "预付卡、商家跑路、充值卡、会员卡不退、办卡不退"),
        Category("counterfeit_goods", "假冒伪劣商品", "consumer", "market_regulation", "small",
                 (120, 7 * DAY), NON_SPATIAL,
                 "假货、三无产品、缺斤短两、假冒伪劣"),
        Category("false_advertising", "虚假宣传", "consumer", "market_regulation", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "虚假宣传、虚假广告、夸大宣传、直播带货"),
        Category("online_shopping", "网购与平台纠纷", "consumer", "market_regulation", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "网购、外卖平台、快递丢件、电商平台、快递"),
        Category("unlicensed_business", "无证无照经营", "consumer", "market_regulation", "small",
                 (120, 7 * DAY), NON_SPATIAL,
                 "无证经营、无照经营、黑作坊、没有营业执照"),
        Category("elevator_fault", "电梯故障与维保", "residential", "market_regulation", "small",
                 (60, 3 * DAY), (50, DAY),
                 "电梯故障、电梯维保、电梯年检、电梯经常坏", co=("property",)),
        Category("consumer_dispute", "消费纠纷", "consumer", "market_regulation", "small",
                 (120, 7 * DAY), NON_SPATIAL,
                 "退款、售后、霸王条款、不开发票、消费纠纷、退货"),
        Category("price_complaint", "价格投诉", "market", "market_regulation", "small",
                 (240, 7200), (100, 10080),
                 "价格、乱收费、宰客、overcharge、price"),
    ],
    "transport": [
        Category("traffic_accident", "交通事故", "traffic", "traffic_police", "small",
                 (5, 240), (200, 120),
                 "车祸、交通事故、撞车、car crash、traffic accident", co=("health",),
                 floors={"III": "medium", "II": "big"}),
        Category("traffic_signal_failure", "信号灯故障", "traffic", "traffic_police", "medium",
                 (15, 240), (100, 240),
                 "红绿灯、信号灯、traffic light、signal", co=("transport",)),
        Category("traffic_congestion", "交通拥堵", "traffic", "traffic_police", "medium",
                 (10, 120), (500, 60),
                 "堵车、拥堵、交通拥堵、traffic jam", co=("transport",), floors={"II": "big"}),
        Category("shared_bikes", "共享单车乱停放", "shared_bikes", "transport", "small",
                 (60, DAY), (100, 240),
                 "共享单车、单车堆积、电动车乱停、单车乱停", co=("urban_management",)),
        Category("illegal_parking", "违法停车", "traffic", "traffic_police", "small",
                 (30, 240), (100, 240),
                 "乱停、违停、占用车位、illegal parking"),
        Category("parking", "停车难与停车收费", "transport", "transport", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "停车难、停车位、停车收费、充电桩、停车场", co=("traffic_police",)),
        Category("road_construction", "道路施工占道", "worksite", "transport", "medium",
                 (120, 7 * DAY), (300, 3 * DAY),
                 "占道施工、修路、道路施工、施工围挡", co=("traffic_police",)),
        Category("bus_service", "公交服务", "transport", "transport", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "公交、公交车、公交站台、线路调整、不准点"),
        Category("taxi_service", "出租车与网约车", "transport", "transport", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "拒载、出租车、网约车、绕路、打表"),
        Category("metro_service", "地铁服务", "transport", "transport", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "地铁、地铁站、地铁口、地铁班次、地铁安检"),
    ],
    # A river's black water, garbage, silt and outfalls are one stretch's matter ("river").
    "environment": [
        Category("black_smelly_river", "黑臭水体", "river", "water", "small",
                 (60, 7 * DAY), (500, 3 * DAY),
                 "黑臭水体、河水发黑、河水发臭、臭水沟、河道发臭", co=("ecology",)),
        Category("river_garbage", "河道垃圾与漂浮物", "river", "water", "small",
                 (60, DAY), (200, DAY),
                 "河道垃圾、河里垃圾、漂浮物、水葫芦、河面垃圾", co=("urban_management",)),
        Category("river_dredging", "河道淤积与清淤", "river", "water", "medium",
                 (240, 15 * DAY), (500, 7 * DAY),
                 "河道淤积、清淤、淤泥、河道整治、驳岸"),
        Category("sewage_discharge", "污水直排", "river", "ecology", "medium",
                 (60, 5 * DAY), (300, 3 * DAY),
                 "污水直排、排污口、偷排、雨污混流、直排入河", co=("water",)),
        Category("water_pollution", "水体污染", "ecology", "ecology", "medium",
                 (60, 1440), (1000, 1440),
                 "水体污染、河水变色、死鱼、water pollution", co=("water",), floors={"II": "big"}),
        Category("industrial_pollution", "企业排污", "ecology", "ecology", "medium",
                 (60, 5 * DAY), (1000, DAY),
                 "工厂排污、工厂废气、企业排污、化工厂、恶臭"),
        Category("livestock_pollution", "畜禽养殖污染", "ecology", "ecology", "medium",
                 (120, 7 * DAY), (1000, 3 * DAY),
                 "养殖污染、养猪场、养殖废水、畜禽养殖、猪粪", co=("agriculture",)),
        Category("air_pollution", "大气污染", "ecology", "ecology", "medium",
                 (60, 1440), (1000, 720),
                 "空气污染、异味、粉尘、air pollution、dust、odour", floors={"II": "big"}),
        Category("open_burning", "露天焚烧", "ecology", "urban_management", "small",
                 (30, 240), (300, 240),
                 "焚烧、烧垃圾、秸秆、open burning", co=("ecology",)),
        Category("construction_noise", "施工噪音", "worksite", "urban_management", "small",
                 (30, 480), (200, 480),
                 "施工噪音、夜间施工、打桩、施工扰民", co=("ecology",)),
        Category("restaurant_fumes", "餐饮油烟", "restaurant_fumes", "urban_management", "small",
                 (60, 3 * DAY), (100, DAY),
                 "油烟、烧烤油烟、油烟扰民、餐饮油烟", co=("ecology",)),
        Category("noise", "噪声扰民", "public_safety", "police", "micro",
                 (30, 480), (150, 240),
                 "噪音、噪声、扰民、吵闹、noise、noisy、loud"),
    ],
    "urban": [
        Category("construction_waste", "建筑垃圾乱倒", "environment", "urban_management", "small",
                 (60, 1440), (300, 1440),
                 "建筑垃圾、渣土、construction waste", co=("housing",)),
        Category("garbage_collection", "垃圾清运与分类", "environment", "urban_management", "micro",
                 (30, DAY), (100, 720),
                 "垃圾清运、垃圾桶满、垃圾分类、垃圾站、没人收垃圾"),
        Category("garbage_exposed", "垃圾暴露", "environment", "urban_management", "micro",
                 (30, 240), (100, 720),
                 "垃圾、暴露垃圾、垃圾堆、garbage、rubbish、trash"),
        Category("street_vending", "占道经营", "environment", "urban_management", "micro",
                 (30, 240), (100, 240),
                 "占道、摆摊、流动摊贩、street vendor、vending"),
        Category("illegal_advertising", "违规广告", "environment", "urban_management", "small",
                 (120, 2880), (100, 10080),
                 "小广告、牛皮癣、违规广告、illegal ad、flyer"),
        Category("manhole_cover_displaced", "井盖移位", "municipal", "urban_management", "small",
                 (30, 480), (30, 720),
                 "井盖移位、井盖松动、manhole tilt、loose cover"),
        Category("manhole_cover_missing", "井盖缺失", "municipal", "urban_management", "small",
                 (15, 240), (30, 1440),
                 "井盖、窨井、manhole、missing cover", floors={"III": "medium"}),
        Category("pothole", "道路坑洼", "municipal", "urban_management", "small",
                 (60, 1440), (50, 4320),
                 "坑洼、坑、路面破损、pothole、road damage"),
        Category("streetlight_out", "路灯不亮", "municipal", "urban_management", "small",
                 (240, 4320), (200, 4320),
                 "路灯、灯不亮、street light、streetlight", co=("power_utility",)),
        Category("tree_fallen", "树木倒伏", "environment", "parks", "small",
                 (30, 480), (100, 360),
                 "倒树、树木倒伏、断枝、fallen tree", co=("urban_management",)),
        Category("greenery_maintenance", "绿化养护", "greenery_maintenance", "parks", "small",
                 (240, 7 * DAY), (100, 3 * DAY),
                 "绿化、树木修剪、绿化带、草坪、修剪树枝"),
        Category("public_toilet", "公共厕所", "public_toilet", "urban_management", "small",
                 (60, DAY), (50, DAY),
                 "公厕、公共厕所、厕所脏、厕所关闭"),
        Category("stray_animals", "流浪动物与文明养犬", "stray_animals", "police", "small",
                 (30, DAY), (300, DAY),
                 "流浪狗、流浪猫、遛狗不拴绳、犬只伤人、狗咬人", co=("urban_management",)),
        Category("sewage_overflow", "污水外溢", "flooding", "water", "small",
                 (30, 480), (200, 720),
                 "污水、化粪池、冒水、sewage、overflow", co=("urban_management",)),
    ],
    "utilities": [
        Category("water_main_burst", "供水管网爆管", "flooding", "water", "medium",
                 (15, 480), (300, 360),
                 "爆管、水管爆裂、自来水管、water main、burst pipe",
                 co=("water_utility", "traffic_police"), floors={"I": "big"}),
        Category("water_outage", "停水", "utilities", "water_utility", "medium",
                 (30, 720), (1000, 720),
                 "停水、没水、水压低、no water、water outage"),
        Category("water_quality", "供水水质", "water_quality", "water_utility", "medium",
                 (60, 3 * DAY), (1000, DAY),
                 "水质、自来水浑浊、自来水发黄、水有异味", co=("health",)),
        Category("power_outage", "停电", "utilities", "power_utility", "medium",
                 (30, 480), (1000, 480),
                 "停电、断电、没电、power cut、blackout", floors={"II": "big"}),
        Category("gas_supply", "燃气供应", "utility_service", "gas_utility", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "燃气开户、燃气费、气压低、燃气安检、燃气表"),
        Category("heating_supply", "供暖", "utility_service", "gas_utility", "medium",
                 (120, 5 * DAY), NON_SPATIAL,
                 "暖气、供暖、暖气不热、供暖费"),
    ],
    "public_security": [
        Category("fraud", "诈骗与非法集资", "public_security", "police", "medium",
                 (30, 10 * DAY), NON_SPATIAL,
                 "诈骗、电信诈骗、非法集资、养老诈骗、骗钱"),
        Category("gambling_drugs", "黄赌毒", "gambling_drugs", "police", "small",
                 (30, 3 * DAY), (100, DAY),
                 "赌博、卖淫、吸毒、黄赌毒、赌场"),
        Category("household_registration", "户籍与证件办理", "public_security", "police", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "户口迁移、身份证、居住证、户籍、上户口"),
        Category("public_security", "治安问题", "public_safety", "police", "small",
                 (15, 480), (200, 240),
                 "治安、打架、盗窃、fight、theft", floors={"III": "medium"}),
        Category("crowd_gathering", "人员聚集", "public_safety", "police", "medium",
                 (5, 240), (500, 120),
                 "聚集、围堵、人群、crowd、gathering", co=("emergency",), floors={"II": "big"},
                 emergency="big"),
        Category("neighbour_dispute", "邻里纠纷", "social", "police", "micro",
                 (60, 2880), (50, 1440),
                 "纠纷、邻居、矛盾、dispute、neighbour", co=("residents_committee",)),
    ],
    "civil_affairs": [
        Category("subsistence_allowance", "低保与困难救助", "civil_affairs", "civil_affairs",
                 "small",
                 (120, 10 * DAY), NON_SPATIAL,
                 "低保申请、临时救助、特困、低保、困难救助"),
        Category("disability_support", "残疾人帮扶", "civil_affairs", "civil_affairs", "small",
                 (120, 10 * DAY), NON_SPATIAL,
                 "残疾人、残疾人补贴、无障碍、残疾证"),
        Category("funeral_services", "殡葬服务", "civil_affairs", "civil_affairs", "medium",
                 (120, 7 * DAY), NON_SPATIAL,
                 "殡仪馆、墓地、乱埋乱葬、殡葬、公墓"),
        Category("veterans_affairs", "退役军人服务", "civil_affairs", "civil_affairs", "medium",
                 (120, 10 * DAY), NON_SPATIAL,
                 "退役军人、退役安置、优抚金、退伍"),
        Category("marriage_registration", "婚姻登记", "civil_affairs", "civil_affairs", "medium",
                 (120, 5 * DAY), NON_SPATIAL,
                 "结婚登记、婚姻登记、离婚冷静期、离婚登记"),
        Category("elderly_assistance", "困难群众帮扶", "social", "civil_affairs", "small",
                 (120, 4320), (50, 4320),
                 "独居老人、救助、低保、elderly、welfare", co=("residents_committee",)),
    ],
    "emergency": [
        Category("road_collapse", "路面塌陷", "municipal", "urban_management", "medium",
                 (10, 480, 5, 240), (100, 360),
                 "塌陷、地陷、路面下沉、road collapse、sinkhole", co=("housing", "traffic_police"),
                 floors={"II": "big"}, emergency="medium"),
        Category("waterlogging", "积水内涝", "flooding", "water", "small",
                 (15, 240, 5, 120), (500, 180),
                 "积水、内涝、淹水、水淹、waterlogging、flooding、flooded",
                 co=("urban_management", "traffic_police"), floors={"II": "medium", "I": "big"},
                 emergency="medium"),
        Category("river_flood", "河道汛情", "flooding", "water", "medium",
                 (10, 360, 5, 180), (2000, 360),
                 "河水上涨、漫堤、汛情、river flood", co=("emergency",), floors={"II": "big"},
                 emergency="big"),
        Category("gas_leak", "燃气泄漏", "hazard", "emergency", "medium",
                 (5, 120), (200, 120),
                 "燃气、煤气、天然气、漏气、gas leak、gas smell",
                 co=("gas_utility", "fire_rescue", "police"), floors={"II": "big"},
                 emergency="medium"),
        Category("fire", "火灾", "hazard", "fire_rescue", "medium",
                 (2, 240), (300, 120),
                 "火灾、起火、着火、冒烟、fire、smoke、burning",
                 co=("emergency", "police", "health"), floors={"II": "big"}),
        Category("hazardous_chemicals", "危险化学品事故", "hazard", "emergency", "medium",
                 (5, 240), (1000, 240),
                 "危化品、化学品、泄漏、hazardous chemical、chemical spill",
                 co=("fire_rescue", "ecology", "police"), floors={"II": "big"}, emergency="big"),
        Category("elevator_entrapment", "电梯困人", "hazard", "market_regulation", "small",
                 (5, 60), (30, 60),
                 "电梯、困人、被困、elevator、lift、trapped", co=("property", "fire_rescue")),
        Category("landslide", "地质灾害", "hazard", "planning", "medium",
                 (10, 480, 5, 240), (1000, 360),
                 "滑坡、泥石流、崩塌、landslide、mudslide", co=("emergency",), floors={"II": "big"},
                 emergency="big"),
    ],
    "culture_tourism": [
        Category("tourism_complaint", "旅游投诉", "culture_tourism", "culture_tourism", "medium",
                 (60, 5 * DAY), NON_SPATIAL,
                 "旅游投诉、景区、导游、旅行社、强制购物", co=("market_regulation",)),
        Category("cultural_venue", "文化场馆与活动", "culture_tourism", "culture_tourism", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "图书馆、文化馆、博物馆、演出、文化活动"),
        Category("sports_facility", "体育健身设施", "sports_facility", "culture_tourism", "small",
                 (240, 7 * DAY), (100, 3 * DAY),
                 "健身器材、球场、体育馆、健身路径、运动场"),
        Category("entertainment_venue", "娱乐场所", "culture_tourism", "culture_tourism", "medium",
                 (60, 5 * DAY), NON_SPATIAL,
                 "网吧、KTV、剧本杀、娱乐场所、接纳未成年人", co=("police",)),
    ],
    "agriculture": [
        Category("land_contract", "农村土地承包", "agriculture", "agriculture", "medium",
                 (240, 15 * DAY), NON_SPATIAL,
                 "土地流转、土地承包、承包纠纷、宅基地"),
        Category("agricultural_subsidy", "惠农补贴", "agriculture", "agriculture", "medium",
                 (240, 10 * DAY), NON_SPATIAL,
                 "种粮补贴、农机补贴、退耕还林、惠农补贴、耕地地力补贴"),
        Category("rural_affairs", "农村集体事务", "agriculture", "agriculture", "medium",
                 (240, 15 * DAY), NON_SPATIAL,
                 "村务公开、集体资金、村干部、集体经济", co=("civil_affairs",)),
    ],
}
# fmt: on
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


def _category(class_code: str, spec: Category) -> dict[str, Any]:
    category: dict[str, Any] = {
        "code": spec.code,
        "name": spec.name,
        "class_code": class_code,
        "family": spec.family,
        "lead_kind": spec.lead,
    }
    if spec.co:
        category["co_handler_kinds"] = list(spec.co)
    category["lowest_level"] = spec.lowest
    if spec.floors:
        category["severity_floor"] = spec.floors
    if spec.emergency:
        category["emergency_floor"] = spec.emergency
    category["sla"] = {"accept_minutes": spec.sla[0], "resolve_minutes": spec.sla[1]}
    if len(spec.sla) == 4:
        category["sla"]["emergency"] = {
            "accept_minutes": spec.sla[2],
            "resolve_minutes": spec.sla[3],
        }
    category["correlation"] = {
        "radius_m": spec.correlation[0],
        "window_minutes": spec.correlation[1],
    }
    category["keywords"] = spec.keywords.split("、")
    return category


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

    catalogue: dict[str, Any] = {"classes": [], "categories": [], "sensor_types": []}
    if list(CATALOGUE) != [code for code, _, _ in CLASSES]:
        raise ValueError("CATALOGUE must list the classes of CLASSES, in the same order")
    for class_code, class_name, covers in CLASSES:
        catalogue["classes"].append({"code": class_code, "name": class_name, "description": covers})
    for class_code, members in CATALOGUE.items():
        for spec in members:
            catalogue["categories"].append(_category(class_code, spec))
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
