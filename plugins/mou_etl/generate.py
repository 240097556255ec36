"""Sample feed generator: realistic deliveries of every MoU state into a landing zone.

    generate(landing, start, days, scale=0.001, seed=0, bad_rows=0.0, states=None) -> summary
    python -m mou_etl generate --landing DIR --start YYYY-MM-DD --days N [--scale S] [--seed K]
                               [--bad-rows F] [--state CODE ...]

It writes ``<landing>/<STATE>/<YYYY-MM-DD>/`` deliveries exactly as
``shared/contract/feeds.md`` describes (files first, ``manifest.json`` last through
a temporary file and a rename) for every report date ``start .. start+days-1``.

What a run holds
----------------
* Volumes follow the public figures: at scale 1.0 Uttar Pradesh has 18.8 lakh
  registered employees and ~72 lakh completion-feed rows, the nation 1.5 crore
  users; every state gets at least ``MIN_USERS`` users at tiny scales.
* History: the first date of a state is a ``snapshot``; then ``delta`` mode
  (new registrations, new course enrolments, Not Started -> In Progress ->
  Completed progressions, department changes), except states that deliver a
  snapshot every day (UK, GA, MZ; their snapshots drop a few users: removals)
  or every 7th day (MH, KL, TR). Some states send only the enrolment feed on
  days without completion changes (BR, OD, NL, HP) or only the completion feed
  (TN, AS). Two states (chosen by the seed) skip the last day (they show stale).
  About 0.1 % of a state's people are also registered in a partner state with
  the same User_ID (transfers).
* Every variation the contract allows is spread deterministically over the
  states (by their position in the registry) and days: CSV / JSONL, gzip,
  UTF-8 BOM, CRLF, quote-all CSV, header spellings, column order, date formats
  with or without a time, status spellings, JSON numbers, missing JSON keys,
  quoted commas / quotes / newlines, Devanagari text, department spelling noise
  (spaces, precomposed nukta letters that NFC decomposes), personal-data and
  unknown columns, empty Batch_Id.
* ``bad_rows`` adds that fraction of bad rows to every feed file, covering every
  row rule of the contract plus exact duplicates; the summary counts them per
  file and code.
* Deterministic: the same arguments give byte-identical files. A state's files
  do not depend on which other states are generated.
* Fast and memory-bounded: rows are made in chunks of ``CHUNK_ROWS`` with numpy
  and pyarrow vectorised ops, rendered and deflated on a small thread pool
  (each chunk's deflate blocks are joined pigz-style into one gzip member) and
  hashed as written.

Details worth knowing
---------------------
* A delta feed without changes is not sent: such days hold one feed. When
  nothing changed at all, both feeds are sent empty (a header-only CSV, a
  0-byte JSONL file), so the state still reports.
* Non-NFC Devanagari: for the nukta letters (ज़ फ़ ड़ ...) NFC is the
  *decomposed* form (U+095B etc. are composition exclusions), so the canonical
  text is decomposed and the noisy department spellings use the precomposed
  code points, which NFC turns back into the canonical text.
* Bad rows never hide good ones: each has a key of its own (except exact
  duplicates and the two rows of a conflicting pair), and breaks exactly the
  rule it is counted under and none earlier in the contract's order. Half the
  ``unknown_user`` rows name a user whom the state registers the next day.
  Small files get a bad row with the matching probability, so a tiny file may
  exceed a 10 % threshold (``too_many_bad_rows``); the per-file counts say so.
* Re-generating into a folder first removes its manifest and feed files.

The summary (JSON-serialisable): ``states[CODE]`` has ``pattern``,
``users_at_start``, ``completion_rows_at_start``, ``transfer_partner`` and
``deliveries[YYYY-MM-DD]`` = {``mode``, ``path``, ``files``: [{``feed``,
``name``, ``rows``, ``sha256``, ``bytes``, ``bad`` (injected rows by rule code,
plus ``duplicate`` for extra identical copies; a conflicting pair counts 2),
``format``, ``gzip``, ``bom``, ``crlf``, ...}], ``expected``}. ``expected``
holds the state's true figures as of that date from the good rows alone
(``registered_users``, ``users_with_completion``,
``users_with_3plus_completions``, ``course_enrolments``,
``course_completions``, ``learning_hours``, ``certificates_issued``,
``registrations_ytd``, ``completions_ytd``, as defined in warehouse.md for
mart.state_summary); bad rows, also held rows that load later, are not in it.
``skipped`` lists the (state, date) deliveries left out; ``totals`` sums up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import time
import unicodedata
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK_ROWS = 100_000
MIN_USERS = 8
WORKERS = max(1, min(4, os.cpu_count() or 2))
GZIP_LEVEL = 1

BAD_CODES_COMPLETION = (
    "missing_required",
    "bad_date",
    "future_date",
    "bad_value",
    "completed_without_date",
    "completed_before_enrolled",
    "conflicting_duplicate",
    "unknown_user",
    "duplicate",
)
BAD_CODES_ENROLMENT = ("missing_required", "bad_date", "future_date", "conflicting_duplicate", "duplicate")
FEEDS = ("enrolment", "completion")

# ----------------------------------------------------------------------------------------------
# State profiles: users at scale 1.0 (sum 1.5 crore), completion rows per user, Hindi-speaking,
# delivery pattern. States not listed (added to the registry later) get DEFAULT_PROFILE.
# ----------------------------------------------------------------------------------------------
_PROFILES = {
    "UP": (1_880_000, 3.83, True, "delta"),
    "MH": (1_400_000, 3.2, False, "weekly"),
    "RJ": (1_060_000, 3.9, True, "delta"),
    "MP": (1_010_000, 4.1, True, "delta"),
    "BR": (965_000, 2.9, True, "delta"),
    "TN": (915_000, 3.4, False, "delta"),
    "KA": (865_000, 3.0, False, "delta"),
    "GJ": (820_000, 3.7, False, "delta"),
    "AP": (770_000, 3.3, False, "delta"),
    "WB": (770_000, 2.6, False, "delta"),
    "OD": (625_000, 3.5, False, "delta"),
    "TG": (580_000, 3.1, False, "delta"),
    "KL": (530_000, 4.2, False, "weekly"),
    "AS": (480_000, 2.8, False, "delta"),
    "CG": (435_000, 3.6, True, "delta"),
    "JH": (385_000, 2.7, True, "delta"),
    "HR": (365_000, 3.8, True, "delta"),
    "PB": (345_000, 2.9, False, "delta"),
    "UK": (200_000, 3.6, True, "daily"),
    "HP": (195_000, 4.0, True, "delta"),
    "TR": (77_000, 3.0, False, "weekly"),
    "ML": (58_000, 2.5, False, "delta"),
    "MN": (58_000, 2.6, False, "delta"),
    "NL": (53_000, 2.4, False, "delta"),
    "AR": (48_000, 2.5, False, "delta"),
    "GA": (43_000, 3.9, False, "daily"),
    "MZ": (39_000, 3.2, False, "daily"),
    "SK": (29_000, 3.4, False, "delta"),
}
DEFAULT_PROFILE = (100_000, 3.0, False, "delta")
_ENROLMENT_ONLY_SOME_DAYS = {"BR", "OD", "NL", "HP"}
_COMPLETION_ONLY_SOME_DAYS = {"TN", "AS"}

# ----------------------------------------------------------------------------------------------
# Catalogues (NFC; department noise adds non-NFC spellings on purpose)
# ----------------------------------------------------------------------------------------------


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


_DEPTS_HI = [
    ("बेसिक शिक्षा विभाग", 20, "Basic Education"),
    ("स्वास्थ्य एवं परिवार कल्याण विभाग", 18, "Health"),
    ("गृह (पुलिस) विभाग", 16, "Police"),
    ("राजस्व विभाग", 9, "Revenue"),
    ("पंचायती राज विभाग", 8, "Panchayat"),
    ("ग्राम्य विकास विभाग", 7, "Rural Development"),
    ("महिला एवं बाल विकास विभाग", 7, "Women & Child"),
    ("कृषि विभाग", 6, "Agriculture"),
    ("ज़िला प्रशासन", 5, "District Administration"),
    ("माध्यमिक शिक्षा विभाग", 5, "Secondary Education"),
    ("लोक निर्माण विभाग", 4, "Public Works"),
    ("नगर विकास विभाग", 4, "Urban Development"),
    ("परिवहन एवं सड़क सुरक्षा विभाग", 3, "Transport"),
    ("खाद्य एवं रसद विभाग", 3, "Food"),
    ("वन एवं पर्यावरण विभाग", 3, "Forest"),
    ("अग्निशमन एवं आपात सेवा (फ़ायर सर्विस)", 2, "Fire Service"),
    ("ऊर्जा विभाग", 2, "Energy"),
    ("वित्त विभाग", 2, "Finance"),
]
_DEPTS_EN = [
    ("School Education", 20, "Basic Education"),
    ("Health & Family Welfare", 18, "Health"),
    ("Home (Police)", 16, "Police"),
    ("Revenue", 9, "Revenue"),
    ("Panchayati Raj", 8, "Panchayat"),
    ("Rural Development", 7, "Rural Development"),
    ("Women & Child Development", 7, "Women & Child"),
    ("Agriculture", 6, "Agriculture"),
    ("General Administration", 5, "District Administration"),
    ("Higher Education", 5, "Secondary Education"),
    ("Public Works", 4, "Public Works"),
    ("Urban Development", 4, "Urban Development"),
    ("Transport", 3, "Transport"),
    ("Food, Civil Supplies and Consumer Affairs", 3, "Food"),
    ("Forest & Environment", 3, "Forest"),
    ("Fire & Emergency Services", 2, "Fire Service"),
    ("Energy", 2, "Energy"),
    ("Finance", 2, "Finance"),
]
_OFFICE = {
    "Basic Education": ("Block Education Office", "खंड शिक्षा अधिकारी कार्यालय"),
    "Health": ("Office of the Chief Medical Officer", "मुख्य चिकित्सा अधिकारी कार्यालय"),
    "Police": ("Office of the Superintendent of Police", "पुलिस अधीक्षक कार्यालय"),
    "Revenue": ("Collectorate", "कलेक्ट्रेट"),
    "Panchayat": ("District Panchayat Office", "ज़िला पंचायत राज अधिकारी कार्यालय"),
    "Rural Development": ("DRDA", "ज़िला ग्राम्य विकास अभिकरण"),
    "Women & Child": ("Office of the District Programme Officer (ICDS)", "ज़िला कार्यक्रम अधिकारी कार्यालय"),
    "Agriculture": ("Office of the Deputy Director Agriculture", "उप कृषि निदेशक कार्यालय"),
    "District Administration": ("District Magistrate's Office", "ज़िलाधिकारी कार्यालय"),
    "Secondary Education": ("Office of the District Inspector of Schools", "ज़िला विद्यालय निरीक्षक कार्यालय"),
    "Public Works": ("PWD Division", "लोक निर्माण विभाग खंड"),
    "Urban Development": ("Municipal Corporation", "नगर निगम"),
    "Transport": ("Regional Transport Office", "संभागीय परिवहन कार्यालय"),
    "Food": ("District Supply Office", "ज़िला पूर्ति कार्यालय"),
    "Forest": ("Divisional Forest Office", "प्रभागीय वनाधिकारी कार्यालय"),
    "Fire Service": ("Chief Fire Officer", "मुख्य अग्निशमन अधिकारी"),
    "Energy": ("Electricity Distribution Division", "विद्युत वितरण खंड"),
    "Finance": ("Treasury Office", "कोषागार कार्यालय"),
}
_DESIGNATIONS = {
    "Basic Education": ["Assistant Teacher", "Head Master", "Shiksha Mitra", "Block Education Officer"],
    "Health": ["ANM", "ASHA", "Staff Nurse", "Medical Officer", "Pharmacist", "Lab Technician"],
    "Police": ["Police Constable", "Head Constable", "Sub Inspector", "Inspector", "Deputy SP"],
    "Revenue": ["Lekhpal", "Patwari", "Tehsildar", "Naib Tehsildar", "Revenue Inspector"],
    "Panchayat": ["Gram Panchayat Adhikari", "Panchayat Secretary", "ADO Panchayat"],
    "Rural Development": ["Block Development Officer", "Gram Vikas Adhikari", "Technical Assistant"],
    "Women & Child": ["Anganwadi Supervisor", "CDPO", "Anganwadi Worker"],
    "Agriculture": ["Agriculture Extension Officer", "Technical Assistant", "Deputy Director"],
    "District Administration": ["Clerk", "Section Officer", "Sub Divisional Magistrate", "Data Entry Operator"],
    "Secondary Education": ["Lecturer", "Principal", "Assistant Teacher (LT)"],
    "Public Works": ["Assistant Engineer", "Junior Engineer", "Executive Engineer"],
    "Urban Development": ["Sanitary Inspector", "Tax Collector", "Assistant Engineer"],
    "Transport": ["Motor Vehicle Inspector", "Clerk", "RTO"],
    "Food": ["Supply Inspector", "Marketing Inspector", "Clerk"],
    "Forest": ["Forest Guard", "Range Officer", "Forester"],
    "Fire Service": ["Fireman", "Fire Station Officer", "Leading Fireman"],
    "Energy": ["Lineman", "Junior Engineer", "Assistant Engineer"],
    "Finance": ["Accountant", "Treasury Officer", "Auditor"],
}
_CITIES = {
    "UP": ["लखनऊ", "कानपुर", "वाराणसी", "आगरा", "प्रयागराज", "गोरखपुर"],
    "UK": ["देहरादून", "हरिद्वार", "नैनीताल", "अल्मोड़ा", "पौड़ी"],
    "BR": ["पटना", "गया", "मुज़फ़्फ़रपुर", "भागलपुर", "दरभंगा"],
    "MP": ["भोपाल", "इंदौर", "जबलपुर", "ग्वालियर", "उज्जैन"],
    "RJ": ["जयपुर", "जोधपुर", "उदयपुर", "कोटा", "अजमेर", "बीकानेर"],
    "HR": ["चंडीगढ़", "गुरुग्राम", "फ़रीदाबाद", "हिसार", "रोहतक"],
    "HP": ["शिमला", "मंडी", "कांगड़ा", "सोलन", "कुल्लू"],
    "CG": ["रायपुर", "बिलासपुर", "दुर्ग", "जगदलपुर", "कोरबा"],
    "JH": ["रांची", "जमशेदपुर", "धनबाद", "बोकारो", "हज़ारीबाग"],
    "AP": ["Amaravati", "Visakhapatnam", "Vijayawada", "Guntur", "Tirupati"],
    "AR": ["Itanagar", "Naharlagun", "Pasighat", "Tawang"],
    "AS": ["Guwahati", "Dibrugarh", "Silchar", "Jorhat", "Tezpur"],
    "GA": ["Panaji", "Margao", "Vasco da Gama", "Mapusa"],
    "GJ": ["Gandhinagar", "Ahmedabad", "Surat", "Vadodara", "Rajkot"],
    "KA": ["Bengaluru", "Mysuru", "Hubballi", "Mangaluru", "Belagavi"],
    "KL": ["Thiruvananthapuram", "Kochi", "Kozhikode", "Thrissur", "Kollam"],
    "MH": ["Mumbai", "Pune", "Nagpur", "Nashik", "Chhatrapati Sambhajinagar"],
    "MN": ["Imphal", "Thoubal", "Churachandpur"],
    "ML": ["Shillong", "Tura", "Jowai"],
    "MZ": ["Aizawl", "Lunglei", "Champhai"],
    "NL": ["Kohima", "Dimapur", "Mokokchung"],
    "OD": ["Bhubaneswar", "Cuttack", "Sambalpur", "Berhampur", "Rourkela"],
    "PB": ["Chandigarh", "Ludhiana", "Amritsar", "Jalandhar", "Patiala"],
    "SK": ["Gangtok", "Namchi", "Gyalshing"],
    "TN": ["Chennai", "Coimbatore", "Madurai", "Tiruchirappalli", "Salem"],
    "TG": ["Hyderabad", "Warangal", "Karimnagar", "Nizamabad"],
    "TR": ["Agartala", "Udaipur", "Dharmanagar"],
    "WB": ["Kolkata", "Howrah", "Siliguri", "Durgapur", "Asansol"],
}
_DEFAULT_CITIES = ["Headquarters", "District Office", "Regional Office"]
_FIRST = (
    "Aarti Abhishek Aditya Ajay Amit Anil Anita Anjali Arjun Asha Deepak Divya Ganesh Geeta Gaurav Harish "
    "Kavita Kiran Lakshmi Mahesh Manoj Meena Mohan Neha Nikhil Pooja Pradeep Priya Rahul Rajesh Rakesh Ramesh "
    "Rekha Ritu Rohit Sanjay Santosh Sarita Shweta Sita Sunil Sunita Suresh Usha Vijay Vikas Vinod Yogesh"
).split()
_LAST = (
    "Sharma Verma Singh Yadav Gupta Kumar Mishra Pandey Tiwari Patel Shah Reddy Rao Nair Menon Das Ghosh Bose "
    "Sahu Mahato Naik Patil Kulkarni Iyer Pillai Chauhan Rawat Negi Bisht Thakur Meena Jat Lal Devi Khan Ansari"
).split()

_COURSE_TOPICS_HI = [
    "कर्मयोगी प्रारंभ",
    "साइबर सुरक्षा जागरूकता",
    "सूचना का अधिकार अधिनियम, 2005",
    "ई-ऑफ़िस प्रशिक्षण",
    "आपदा प्रबंधन",
    "लैंगिक संवेदनशीलता",
    "योग ब्रेक",
    "भ्रष्टाचार निवारण",
    "ज़िला प्रशासन में नेतृत्व",
    "राजभाषा हिंदी",
    "सार्वजनिक ख़रीद (GeM)",
    'मिशन कर्मयोगी: "सेवा भाव"',
    "नागरिक केंद्रित शासन",
    "मातृ एवं शिशु स्वास्थ्य",
    "पुलिस व्यवहार एवं मानवाधिकार",
    "भूमि अभिलेख एवं राजस्व संहिता",
    "वित्तीय प्रबंधन के मूल सिद्धांत",
    "ग्राम पंचायत विकास योजना",
    "पोषण अभियान",
    "स्वच्छ भारत मिशन",
    "कार्यस्थल पर तनाव प्रबंधन",
    "डिजिटल भुगतान एवं UPI",
]
_COURSE_TOPICS_EN = [
    "Karmayogi Prarambh",
    "Cyber Security Awareness",
    "Right to Information Act, 2005",
    "e-Office Training",
    "Disaster Management",
    "Prevention of Sexual Harassment (POSH) at Workplace",
    "Yoga Break",
    "Prevention of Corruption",
    "Leadership in District Administration",
    'The "Sewa Bhav" Series: Citizen Centricity',
    "Public Procurement on GeM",
    "Basics of Financial Management",
    "Maternal and Child Health",
    "Police Conduct and Human Rights",
    "Land Records, Mutation and Survey",
    "Gram Panchayat Development Plan",
    "Poshan Abhiyaan",
    "Swachh Bharat Mission",
    "Managing Stress at Work",
    "Digital Payments and UPI",
    "Emotional Intelligence",
    "Data Protection: DPDP Act 2023",
    "Artificial Intelligence for Government\nAn Introduction",
    "Effective Noting and Drafting",
    "Office Procedure, Rules & Conduct",
    "Fire Safety in Public Buildings",
    "Climate Change and LiFE",
    "Communication Skills",
    "Project Management Fundamentals",
    "Ethics in Governance",
    "Grievance Redressal (CPGRAMS)",
]
_PROVIDERS_HI = ["UPAAM", "HIPA", "BIPARD", "RCVP Noronha Academy", "HCM RIPA", "ATI Nainital", "iGOT Karmayogi"]
_PROVIDERS_EN = [
    "iGOT Karmayogi",
    "Capacity Building Commission",
    "Ministry of Health and Family Welfare",
    "NeGD",
    "LBSNAA",
    "ISTM",
    "NIC",
    "Bureau of Police Research & Development",
    "National Institute of Disaster Management",
]
_CONTENT_TYPES = [("Course", 70), ("Program", 10), ("Curated Program", 8), ("Moderated Course", 6), ("Learning Resource", 6)]
_DURATIONS = [  # seconds, weight
    (1800, 8), (2700, 6), (3600, 14), (4355, 2), (5400, 8), (7200, 10), (9000, 4), (10800, 6), (14400, 5),
    (18000, 4), (21600, 3), (28800, 4), (36000, 3), (43200, 2), (54000, 2), (72000, 2), (90000, 1),
    (108000, 1), (144000, 1),
]
_GROUPS = [("Group A", 5), ("Group B", 15), ("Group C", 60), ("Group D", 20)]
_RATINGS = ["1", "2", "3", "3.5", "4", "4", "4.5", "5", "5", "4"]
_REMARKS = ["", "", "", "", "", "", "Verified", "Pending verification, see email", 'Name as per "Service Book"', "OK"]
N_HINDI_COURSES = 502  # catalogue 0..501 Hindi titles, 502..1498 English titles
N_COURSES = 1499  # prime: content slots of a user never repeat a course
N_ENGLISH_COURSES = N_COURSES - N_HINDI_COURSES  # 997, prime
HIST_CAP = 60  # at most this many historical course enrolments per user
NEW_SLOT0 = HIST_CAP + 1  # slot of a user's course enrolled on day k: NEW_SLOT0 + k
REG_SPAN_DAYS = 1000
NEW_EVENT_LAG = 7
TRANSFER_SHARE = 0.001  # of a state's people are also registered in its partner state

_NUKTA = {
    "\u0915\u093c": "\u0958", "\u0916\u093c": "\u0959", "\u0917\u093c": "\u095a", "\u091c\u093c": "\u095b",
    "\u0921\u093c": "\u095c", "\u0922\u093c": "\u095d", "\u092b\u093c": "\u095e", "\u092f\u093c": "\u095f",
}

# canonical header names
ENROLMENT_COLUMNS = [
    "User_ID", "Full_Name", "Email", "Phone_Number", "Employee_Id", "Department", "Organization",
    "Designation", "Group", "mdoid", "User_Registration_Date",
]
COMPLETION_COLUMNS = [
    "User_ID", "Full_Name", "Email", "Phone_Number", "Department", "Content_ID", "Batch_Id", "Content_Name",
    "Content_Provider", "Content_Type", "Content_Duration", "Enrolled_On", "Status",
    "Content_Progress_Percentage", "Completed_On", "Certificate_Generated", "Certificate_ID", "User_Rating",
]
REQUIRED = {
    "enrolment": ["User_ID", "Department", "User_Registration_Date"],
    "completion": ["User_ID", "Content_ID", "Content_Name", "Content_Duration", "Enrolled_On", "Status"],
}
_PERSONAL = {"Full_Name", "Email", "Phone_Number", "Employee_Id"}
_OPTIONAL = {
    "enrolment": ["Organization", "Designation", "Group", "mdoid"],
    "completion": [
        "Batch_Id", "Content_Provider", "Content_Type", "Content_Progress_Percentage", "Certificate_Generated",
        "Certificate_ID", "User_Rating",
    ],
}
_EXTRAS = {"enrolment": ["Remarks", "Last_Login", "Data_Source"], "completion": ["Remarks", "Last_Accessed_On", "Data_Source"]}
_TEXT_COLUMNS = {"Full_Name", "Department", "Organization", "Designation", "Content_Name", "Content_Provider", "Remarks", "Data_Source", "Group", "Content_Type"}
_JSON_NUMERIC = {"Content_Progress_Percentage", "User_Rating"}

# ----------------------------------------------------------------------------------------------
# Counter-based hashing (splitmix64): every value is a pure function of (seed, state, stream, index)
# ----------------------------------------------------------------------------------------------
_MASK = (1 << 64) - 1
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0


def _mix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _key(*parts) -> int:
    k = 0x6D6F755F65746C  # "mou_etl"
    for p in parts:
        if isinstance(p, str):
            p = zlib.crc32(p.encode("utf-8"))
        k = _mix_int(k ^ (int(p) & _MASK))
    return k


def _h(key, x) -> np.ndarray:
    """64-bit hash of every element of x (non-negative ints) under key (int or uint64 array)."""
    z = np.asarray(x).astype(np.uint64)
    z *= _G
    z += key if isinstance(key, np.ndarray) else np.uint64(key)
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _u01(key, x) -> np.ndarray:
    return (_h(key, x) >> np.uint64(11)).astype(np.float64) * _INV53


def _below(key, x, n: int) -> np.ndarray:
    return (_h(key, x) % np.uint64(max(1, n))).astype(np.int64)


def _sfloat(key: int) -> float:
    return (_mix_int(key) >> 11) * _INV53


def _affine(n: int, key: int) -> tuple[int, int, int]:
    """An affine permutation r = (a*i + b) % n of 0..n-1: returns (a, b, a^-1 mod n)."""
    if n <= 1:
        return 1, 0, 1
    a = 1 + _mix_int(key) % (n - 1)
    while math.gcd(a, n) != 1:
        a = a + 1 if a + 1 < n else 1
    b = _mix_int(key ^ 0xABCDEF) % n
    return a, b, pow(a, -1, n)


def _weighted(weights) -> np.ndarray:
    w = np.asarray([x[1] for x in weights], dtype=np.float64)
    return np.cumsum(w) / w.sum()


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _str_table(values) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _take(table: pa.Array, idx) -> pa.Array:
    return table.take(pa.array(np.asarray(idx, dtype=np.int64)))


def _join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuid_array(h1: np.ndarray, h2: np.ndarray) -> pa.Array:
    """UUID-4-looking strings from two uint64 arrays, fully vectorised."""
    n = len(h1)
    if n == 0:
        return pa.array([], type=pa.string())
    h1 = (h1 & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
    h2 = (h2 & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = h1.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = h2.astype(">u8").view(np.uint8).reshape(n, 8)
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    chars = _HEX[nib]
    out = np.empty((n, 36), dtype=np.uint8)
    out[:, [8, 13, 18, 23]] = ord("-")
    out[:, 0:8] = chars[:, 0:8]
    out[:, 9:13] = chars[:, 8:12]
    out[:, 14:18] = chars[:, 12:16]
    out[:, 19:23] = chars[:, 16:20]
    out[:, 24:36] = chars[:, 20:32]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))


def _digits(values: np.ndarray, width: int) -> pa.Array:
    s = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(s, width=width, padding="0")


# ----------------------------------------------------------------------------------------------
# Global catalogue tables (seed independent; built once)
# ----------------------------------------------------------------------------------------------
class _Catalog:
    def __init__(self):
        names, providers, types, durations, batched = [], [], [], [], []
        ctype_cum = _weighted(_CONTENT_TYPES)
        dur_cum = _weighted(_DURATIONS)
        ids = []
        for c in range(N_COURSES):
            hk = _key("course", c)
            if c < N_HINDI_COURSES:
                topic = _COURSE_TOPICS_HI[c % len(_COURSE_TOPICS_HI)]
                part = c // len(_COURSE_TOPICS_HI) + 1
                names.append(_nfc(topic if part == 1 else f"{topic} – भाग {part}"))
                providers.append(_PROVIDERS_HI[_mix_int(hk) % len(_PROVIDERS_HI)])
            else:
                e = c - N_HINDI_COURSES
                topic = _COURSE_TOPICS_EN[e % len(_COURSE_TOPICS_EN)]
                part = e // len(_COURSE_TOPICS_EN) + 1
                names.append(topic if part == 1 else f"{topic} - Module {part}")
                providers.append(_PROVIDERS_EN[_mix_int(hk) % len(_PROVIDERS_EN)])
            types.append(_CONTENT_TYPES[int(np.searchsorted(ctype_cum, _sfloat(hk ^ 1), side="right"))][0])
            durations.append(_DURATIONS[min(int(np.searchsorted(dur_cum, _sfloat(hk ^ 2), side="right")), len(_DURATIONS) - 1)][0])
            batched.append(_sfloat(hk ^ 3) < 0.55)
            ids.append(f"do_1139{_mix_int(hk ^ 4) % 10**13:013d}{c:04d}")
        self.ids = _str_table(ids)
        self.names = _str_table(names)
        self.providers = _str_table(providers)
        self.types = _str_table(types)
        self.seconds = np.asarray(durations, dtype=np.int64)
        self.durations = _str_table(f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in durations)
        self.batched = np.asarray(batched)
        self.status_tables = {
            "title": _str_table(["Not Started", "In Progress", "Completed"]),
            "upper": _str_table(["NOT STARTED", "IN PROGRESS", "COMPLETED"]),
            "lower": _str_table(["not started", "in progress", "completed"]),
            "numeric": _str_table(["0", "1", "2"]),
        }
        self.numbers = _str_table([""] + [str(i) for i in range(101)])  # index p+1, 0 -> ""
        self.ratings = _str_table([""] + _RATINGS)
        self.yesno = _str_table(["No", "Yes"])
        self.groups = _str_table(g for g, _ in _GROUPS)
        self.group_cum = _weighted(_GROUPS)
        self.remarks = _str_table(_REMARKS)
        self.first = _str_table(_FIRST)
        self.last = _str_table(_LAST)
        self.first_lower = _str_table(x.lower() for x in _FIRST)
        self.last_lower = _str_table(x.lower() for x in _LAST)
        times = []
        for i in range(256):
            k = _mix_int(_key("time", i))
            hh = 8 + k % 12
            mm = (k >> 8) % 60
            ss = (k >> 16) % 60
            times.append((hh, mm, ss))
        self.times = {
            "hm": _str_table(f"{h:02d}:{m:02d}" for h, m, s in times),
            "hms": _str_table(f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in times),
            "ampm": _str_table(f"{(h - 1) % 12 + 1:02d}:{m:02d} {'AM' if h < 12 else 'PM'}" for h, m, s in times),
        }


_CATALOG: _Catalog | None = None


def _catalog() -> _Catalog:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = _Catalog()
    return _CATALOG


def _dept_variants(name: str) -> list[str]:
    """0 canonical (NFC), 1 leading space, 2 trailing spaces, 3 doubled inner space, 4 non-NFC."""
    doubled = name.replace(" ", "  ", 1) if " " in name else name + "  "
    pre = name
    for seq, single in _NUKTA.items():
        pre = pre.replace(seq, single)
    if pre == name:  # no nukta: another whitespace variant
        pre = f"  {name} "
    return [name, " " + name, name + "  ", doubled, pre]


# ----------------------------------------------------------------------------------------------
# A state's model: every row is a pure function of (seed, state, day, index)
# ----------------------------------------------------------------------------------------------
class _State:
    def __init__(self, code: str, name: str, pos: int, codes: list[str], start: date, days: int,
                 scale: float, seed: int):
        users1, rpu, hindi, pattern = _PROFILES.get(code, DEFAULT_PROFILE)
        self.code, self.name, self.pos = code, name, pos
        self.hindi, self.pattern = hindi, pattern
        self.seed = seed
        self.sid = zlib.crc32(code.encode())
        self.g = _mix_int(_key("state-style", code))
        self.start_ord = start.toordinal()
        self.days = days
        self.K = lru_cache(maxsize=4096)(lambda *parts: _key(seed, code, *parts))
        self.U0 = max(MIN_USERS, int(round(users1 * scale)))
        # historical course enrolments per user: floor(Exp) with mean rpu
        m = 1.0 / math.log(1.0 + 1.0 / rpu)
        counts = np.empty(self.U0, dtype=np.int64)
        kc = self.K("hist-count")
        for a in range(0, self.U0, 1 << 20):
            idx = np.arange(a, min(self.U0, a + (1 << 20)))
            counts[a:a + len(idx)] = np.minimum(np.floor(-m * np.log1p(-_u01(kc, idx))), HIST_CAP)
        self.offsets = np.zeros(self.U0 + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        del counts
        self.E0 = int(self.offsets[-1])
        # the delivery pattern per day
        H = days + NEW_EVENT_LAG + 4
        self.H = H
        self.mode = ["snapshot" if d == 0 or pattern == "daily" or (pattern == "weekly" and d % 7 == 0) else "delta"
                     for d in range(H + 1)]
        quiet_c = np.zeros(H + 1, dtype=bool)
        quiet_e = np.zeros(H + 1, dtype=bool)
        for d in range(1, H + 1):
            if self.mode[d] == "delta":
                quiet_c[d] = code in _ENROLMENT_ONLY_SOME_DAYS and (d + pos) % 3 == 0
                quiet_e[d] = code in _COMPLETION_ONLY_SOME_DAYS and (d + pos) % 3 == 1
        self.quiet_c, self.quiet_e = quiet_c, quiet_e
        act_e = np.concatenate([[0], np.cumsum(~quiet_e[1:])])
        act_c = np.concatenate([[0], np.cumsum(~quiet_c[1:])])

        def cum(rate: float, active: np.ndarray, name: str, cap: int) -> np.ndarray:
            ph = _sfloat(self.K("phase", name))
            return np.minimum(np.floor(rate * active + ph) - math.floor(ph), cap).astype(np.int64)

        def frac(name: str, lo: float, hi: float) -> float:  # state-level rate, seed independent
            return lo + (hi - lo) * _sfloat(_key("rate", code, name))

        self.cumN = cum(self.U0 * frac("new-users", 0.003, 0.008), act_e, "N", 10**12)  # new users
        self.cumQ = cum(self.U0 * 0.0005, act_e, "Q", self.U0)  # department changes
        self.cumR = cum(self.U0 * 0.0003, np.arange(H + 1), "R", self.U0 // 10) if pattern == "daily" else np.zeros(H + 1, np.int64)
        self.PEND = int(self.E0 * 0.3)
        self.cumP = cum(self.E0 * frac("progress", 0.003, 0.006), act_c, "P", self.PEND)  # progressions
        rawM = np.diff(cum(self.E0 * frac("new-enrol", 0.004, 0.009), act_c, "M", 10**12), prepend=0)
        self.U = self.U0 + self.cumN  # users registered by day d
        self.M = np.minimum(rawM, self.U)
        self.M[0] = 0
        self.cumM = np.cumsum(self.M)
        self.permE = _affine(max(self.E0, 1), self.K("perm-E"))
        self.permQ = _affine(self.U0, self.K("perm-Q"))
        self.permR = _affine(self.U0, self.K("perm-R"))
        self.next_active_c = np.arange(H + 2 + NEW_EVENT_LAG)
        for d in range(len(self.next_active_c) - 1, -1, -1):
            if d <= H and quiet_c[d]:
                self.next_active_c[d] = self.next_active_c[d + 1] if d + 1 < len(self.next_active_c) else d + 1
        # transfers: the users of rank < nT (in a permutation) are people of the partner state, each
        # mapped to one partner user of rank >= the partner's own nT (so no one is in three states)
        self.nT = int(round(self.U0 * TRANSFER_SHARE))
        self.permT = _affine(self.U0, _key(seed, code, "perm-T"))
        self.partner = None
        if len(codes) > 1 and self.nT:
            pcode = codes[(pos + 7) % len(codes)]
            if pcode != code:
                pu = max(MIN_USERS, int(round(_PROFILES.get(pcode, DEFAULT_PROFILE)[0] * scale)))
                pnT = int(round(pu * TRANSFER_SHARE))
                self.partner = (pcode, zlib.crc32(pcode.encode()), pu, pnT, _affine(pu, _key(seed, pcode, "perm-T")),
                                _affine(max(pu - pnT, 1), _key(seed, "transfer", code)))
        self.k_uuid = _key(seed, "uuid", self.sid)
        self.depts = _DEPTS_HI if hindi else _DEPTS_EN
        self.dept_cum = _weighted(self.depts)
        cities = _CITIES.get(code, _DEFAULT_CITIES)
        self.ncity = len(cities)
        self.cities = _str_table(cities)
        variants, orgs, mdoids, desigs = [], [], [], []
        for di, (dname, _, fam) in enumerate(self.depts):
            variants.extend(_dept_variants(_nfc(dname)))
            office_en, office_hi = _OFFICE[fam]
            for ci, city in enumerate(cities):
                office = office_hi if hindi else office_en
                if di == 3 and ci == 1:
                    org = f"{office}\n{city}"  # an address with a line break
                elif di == 5:
                    org = f'"{office}" Cell, {city}'
                else:
                    org = f"{office}, {city}"
                orgs.append(_nfc(org))
                mdoids.append(f"0137{_mix_int(_key('mdo', code, di, ci)) % 10**16:016d}")
            dl = _DESIGNATIONS[fam]
            desigs.extend(dl[i % len(dl)] for i in range(4))
        self.dept_table = _str_table(variants)
        self.org_table = _str_table(orgs)
        self.mdo_table = _str_table(mdoids)
        self.desig_table = _str_table(desigs)
        self.has_nukta = np.asarray([_dept_variants(_nfc(d))[4].strip() != _nfc(d) for d, _, _ in self.depts])
        self.cdom = (0, N_COURSES) if hindi else (N_HINDI_COURSES, N_ENGLISH_COURSES)
        dom = ["gmail.com", "yahoo.co.in", f"{code.lower()}.gov.in", "nic.in"]
        self.email_domains = _str_table(dom)

    # --- users -----------------------------------------------------------------------------------
    def users_registered(self, d: int) -> int:
        return int(self.U[d])

    def removed_mask(self, u: np.ndarray, d: int) -> np.ndarray:
        if self.cumR[d] == 0:
            return np.zeros(len(u), dtype=bool)
        a, b, _ = self.permR
        inr = u < self.U0
        r = (a * np.where(inr, u, 0) + b) % self.U0
        return inr & (r < self.cumR[d])

    def reg_ord(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.int64)
        x = _u01(self.K("reg"), u)
        hist = self.start_ord - np.floor(REG_SPAN_DAYS * x * x).astype(np.int64)
        k = np.searchsorted(self.cumN, np.maximum(u - self.U0, 0), side="right")
        return np.where(u < self.U0, hist, self.start_ord + k)

    def dept(self, u: np.ndarray, d: int) -> np.ndarray:
        nd = len(self.depts)
        base = _pick(self.dept_cum, _u01(self.K("dept"), u))
        if self.cumQ[d] == 0:
            return base
        a, b, _ = self.permQ
        inr = u < self.U0
        r = (a * np.where(inr, u, 0) + b) % self.U0
        changed = inr & (r < self.cumQ[d])
        alt = (base + 1 + _below(self.K("dept-alt"), u, nd - 1)) % nd
        return np.where(changed, alt, base)

    def person(self, u: np.ndarray):
        """(key array, index array) identifying the person: a transfer uses the partner's identity."""
        keys = np.full(len(u), np.uint64(self.k_uuid))
        idx = np.asarray(u, dtype=np.int64).copy()
        if self.partner is not None:
            pcode, psid, pu, pnT, (_, pb, painv), (xa, xb, _) = self.partner
            inr = u < self.U0
            a, b, _ = self.permT
            t = (a * np.where(inr, u, 0) + b) % self.U0
            tr = inr & (t < min(self.nT, pu - pnT))
            if tr.any():
                x = (xa * t[tr] + xb) % (pu - pnT)  # a distinct partner rank >= pnT for every t
                idx[tr] = (painv * ((pnT + x - pb) % pu)) % pu
                keys[tr] = np.uint64(_key(self.seed, "uuid", psid))
        return keys, idx

    # --- course enrolments ---------------------------------------------------------------------------
    def _content(self, u: np.ndarray, slot) -> np.ndarray:
        lo, n = self.cdom
        base = _below(self.K("cbase"), u, n)
        step = 1 + _below(self.K("cstep"), u, n - 1)
        return lo + (base + np.asarray(slot, dtype=np.int64) * step) % n

    def hist_rows(self, j: np.ndarray, d: int) -> dict:
        """Historical course enrolments j (< E0) with their state as of day d."""
        j = np.asarray(j, dtype=np.int64)
        u = np.searchsorted(self.offsets, j, side="right") - 1
        slot = j - self.offsets[u]
        a, b, _ = self.permE
        rank = (a * j + b) % max(self.E0, 1)
        pending = rank < self.PEND
        x = _u01(self.K("hstat"), j)
        init = np.where(pending, np.where(x < 0.3, 0, 1), np.where(x < 0.88, 2, np.where(x < 0.96, 1, 0)))
        done = pending & (rank < self.cumP[d])
        st = init + done
        reg = self.reg_ord(u)
        e = reg + np.floor((self.start_ord - reg + 1) * _u01(self.K("henr"), j)).astype(np.int64)
        e = np.minimum(e, self.start_ord)
        cd_static = e + np.floor((self.start_ord - e + 1) * _u01(self.K("hcd"), j)).astype(np.int64)
        ev = np.searchsorted(self.cumP, rank, side="right")
        cd_event = self.start_ord + ev - (_u01(self.K("hcd-lag"), j) < 0.3)
        cd = np.where(st == 2, np.where(done, cd_event, cd_static), 0)
        return self._finish_rows(j, u, self._content(u, slot), e, st, cd, np.zeros(len(j), dtype=bool))

    def new_rows(self, k: int, t: np.ndarray, d: int) -> dict:
        """Course enrolments created on day k (t < M[k]) with their state as of day d >= k."""
        t = np.asarray(t, dtype=np.int64)
        Uk = int(self.U[k])
        a, b, _ = _affine(Uk, self.K("perm-new", k))
        u = (a * t + b) % Uk
        ent = self.E0 + int(self.cumM[k - 1]) + t
        x = _u01(self.K("nstat"), ent)
        init = np.where(x < 0.15, 2, np.where(x < 0.6, 1, 0))
        moves = (init < 2) & (_u01(self.K("nev"), ent) < 0.5)
        ev = k + 1 + _below(self.K("nlag"), ent, NEW_EVENT_LAG)
        ev = self.next_active_c[np.minimum(ev, len(self.next_active_c) - 1)]
        ev = np.where(moves, ev, 10**9)
        st = init + (ev <= d)
        rep_k = self.start_ord + k
        reg = self.reg_ord(u)
        e = rep_k - ((_u01(self.K("nenr"), ent) < 0.3) & (reg <= rep_k - 1))
        cd = np.where(init == 2, rep_k, np.where(st == 2, self.start_ord + ev, 0))
        return self._finish_rows(ent, u, self._content(u, NEW_SLOT0 + k), e, st, cd, np.full(len(t), k == d))

    def _finish_rows(self, ent, u, cm, e, st, cd, isnew) -> dict:
        prog = np.where(st == 2, 100, np.where(st == 1, 5 + _below(self.K("prog"), ent, 90), 0))
        completed = st == 2
        rating = np.where(completed & (_u01(self.K("rated"), ent) < 0.6), 1 + _below(self.K("rating"), ent, len(_RATINGS)), 0)
        cert = completed & (_u01(self.K("cert"), ent) < 0.92)
        n = len(ent)
        return {
            "ent": np.asarray(ent, dtype=np.int64), "u": np.asarray(u, dtype=np.int64), "cm": np.asarray(cm, dtype=np.int64),
            "cid": np.full(n, -1, dtype=np.int64), "e": np.asarray(e, dtype=np.int64), "st": np.asarray(st, dtype=np.int64),
            "cd": np.asarray(cd, dtype=np.int64), "prog": prog.astype(np.int64), "rating": rating.astype(np.int64),
            "cert": cert, "isnew": np.asarray(isnew, dtype=bool), "ovr": np.zeros(n, dtype=np.int64),
            "good": np.ones(n, dtype=bool),
        }

    def new_events_on(self, k: int, d: int) -> np.ndarray:
        """t of day-k enrolments whose status changes on day d."""
        t = np.arange(int(self.M[k]), dtype=np.int64)
        if len(t) == 0:
            return t
        ent = self.E0 + int(self.cumM[k - 1]) + t
        x = _u01(self.K("nstat"), ent)
        init = np.where(x < 0.15, 2, np.where(x < 0.6, 1, 0))
        moves = (init < 2) & (_u01(self.K("nev"), ent) < 0.5)
        ev = k + 1 + _below(self.K("nlag"), ent, NEW_EVENT_LAG)
        ev = self.next_active_c[np.minimum(ev, len(self.next_active_c) - 1)]
        return t[moves & (ev == d)]

    # --- what a delivery holds: lists of pieces ----------------------------------------------------
    def enrolment_pieces(self, d: int) -> list[tuple]:
        if self.mode[d] == "snapshot":
            return [("users", a, min(a + CHUNK_ROWS, int(self.U[d]))) for a in range(0, int(self.U[d]), CHUNK_ROWS)]
        pieces = []
        if self.U[d] > self.U[d - 1]:
            pieces.append(("users", int(self.U[d - 1]), int(self.U[d])))
        if self.cumQ[d] > self.cumQ[d - 1]:
            pieces.append(("dept-change", int(self.cumQ[d - 1]), int(self.cumQ[d])))
        return pieces

    def completion_pieces(self, d: int) -> list[tuple]:
        pieces = []
        if self.mode[d] == "snapshot":
            pieces += [("hist", a, min(a + CHUNK_ROWS, self.E0)) for a in range(0, self.E0, CHUNK_ROWS)]
            for k in range(1, d + 1):
                pieces += [("new", k, a, min(a + CHUNK_ROWS, int(self.M[k]))) for a in range(0, int(self.M[k]), CHUNK_ROWS)]
            return pieces
        pieces += [("new", d, a, min(a + CHUNK_ROWS, int(self.M[d]))) for a in range(0, int(self.M[d]), CHUNK_ROWS)]
        lo, hi = int(self.cumP[d - 1]), int(self.cumP[d])
        pieces += [("hist-event", a, min(a + CHUNK_ROWS, hi)) for a in range(lo, hi, CHUNK_ROWS)]
        for k in range(max(1, d - NEW_EVENT_LAG - 3), d):
            pieces.append(("new-event", k))
        return pieces

    def delta_rows(self, d: int, feed: str) -> int:
        """Good rows of a delta feed (before bad rows)."""
        total = 0
        for p in (self.enrolment_pieces(d) if feed == "enrolment" else self.completion_pieces(d)):
            total += len(self.new_events_on(p[1], d)) if p[0] == "new-event" else p[-1] - p[-2]
        return total

    def enrolment_rows(self, piece: tuple, d: int) -> dict:
        kind = piece[0]
        if kind == "users":
            u = np.arange(piece[1], piece[2], dtype=np.int64)
        else:  # users whose department changes on day d
            a, b, ainv = self.permQ
            r = np.arange(piece[1], piece[2], dtype=np.int64)
            u = (ainv * ((r - b) % self.U0)) % self.U0
        u = u[~self.removed_mask(u, d)]
        n = len(u)
        return {"ent": u, "u": u, "reg": self.reg_ord(u), "dept": self.dept(u, d), "ovr": np.zeros(n, dtype=np.int64),
                "good": np.ones(n, dtype=bool)}

    def completion_rows(self, piece: tuple, d: int) -> dict:
        kind = piece[0]
        if kind == "hist":
            rows = self.hist_rows(np.arange(piece[1], piece[2], dtype=np.int64), d)
        elif kind == "hist-event":
            a, b, ainv = self.permE
            r = np.arange(piece[1], piece[2], dtype=np.int64)
            rows = self.hist_rows((ainv * ((r - b) % self.E0)) % self.E0, d)
        elif kind == "new":
            rows = self.new_rows(piece[1], np.arange(piece[2], piece[3], dtype=np.int64), d)
        else:
            rows = self.new_rows(piece[1], self.new_events_on(piece[1], d), d)
        if self.cumR[d]:
            keep = ~self.removed_mask(rows["u"], d)
            rows = {k: v[keep] for k, v in rows.items()}
        return rows


# ----------------------------------------------------------------------------------------------
# File styles
# ----------------------------------------------------------------------------------------------
_HEADER_STYLES = ("canonical", "spaces", "kebab", "upper", "snake", "mixed")
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y")
_TIME_STYLES = (None, "hm", "hms", "ampm")
_STATUS_STYLES = ("title", "upper", "lower", "numeric", "mixed")


def _header_name(canon: str, style: str, key: int) -> str:
    words = canon.split("_")
    if style == "canonical":
        return canon
    if style == "spaces":
        return " ".join(words)
    if style == "kebab":
        return "-".join(w.lower() for w in words)
    if style == "upper":
        return canon.upper()
    if style == "snake":
        return canon.lower()
    k = _mix_int(key)
    sep = " _-"[k % 3]
    out = []
    for i, w in enumerate(words):
        c = (k >> (4 + 2 * i)) % 4
        out.append([w.lower(), w.upper(), w.capitalize(), w[:1].lower() + w[1:].upper()][c])
    return sep.join(out)


_PLAIN_CSV = False


class _Style:
    def __init__(self, st: _State, d: int, feed: str):
        p, g = st.pos, st.g
        fmt = "jsonl" if p % 5 == 2 else "csv"
        if feed == "completion" and p % 7 == 3:
            fmt = "csv" if fmt == "jsonl" else "jsonl"
        if d > 0 and (p + d) % 11 == 0:
            fmt = "csv" if fmt == "jsonl" else "jsonl"
        if _PLAIN_CSV:
            fmt = "csv"
        self.fmt = fmt
        self.gzip = not _PLAIN_CSV and (p % 3 == 1 or (d > 0 and (p + 2 * d) % 13 == 0))
        self.bom = fmt == "csv" and (p + d) % 4 == 0
        crlf = p % 4 in (1, 2)
        if d > 0 and (p + d) % 10 == 7:
            crlf = not crlf
        self.eol = "\r\n" if (fmt == "csv" and crlf) else "\n"
        self.quote_all = fmt == "csv" and p % 9 == 4
        hs = p % 6
        if d > 0 and (p + d) % 9 == 4:
            hs = (p + d) % 6
        self.header_style = _HEADER_STYLES[hs]
        df = (p // 2) % 3
        if d > 0 and (p + d) % 8 == 5:
            df = (p + d) % 3
        self.date_format = _DATE_FORMATS[df]
        self.time_style = _TIME_STYLES[(p // 2 + d) % 4] if p % 2 == 0 else None
        self.status_style = _STATUS_STYLES[p % 5]
        self.json_numbers = fmt == "jsonl" and (p + d) % 2 == 0
        self.json_omit_empty = fmt == "jsonl" and p % 3 != 0
        self.dept_noise = 0.04 if st.hindi else (0.02 if p % 2 else 0.0)
        self.nukta_share = 0.4 if st.hindi and p % 3 != 2 else 0.0
        cols = ENROLMENT_COLUMNS if feed == "enrolment" else COMPLETION_COLUMNS
        personal = p % 6 != 5
        optional = set()
        for i, c in enumerate(_OPTIONAL[feed]):
            if (g >> (3 * i)) & 7 != 0:
                optional.add(c)
        if p % 10 == 9:
            optional.discard("Batch_Id")
        if p % 8 == 6:
            optional = set()  # a minimal feed: required columns only
        chosen = [c for c in cols if c in REQUIRED[feed] or c == "Completed_On" or c in optional
                  or (personal and (c in _PERSONAL or (feed == "completion" and c == "Department")))]
        if p % 4 == 3 or p % 5 == 1:
            chosen += [x for i, x in enumerate(_EXTRAS[feed]) if (g >> (20 + i)) & 1 or i == 0]
        if p % 4 == 2:
            order = np.argsort(_u01(_key("col-order", st.code, feed), np.arange(len(chosen))))
            chosen = [chosen[i] for i in order]
        self.columns = chosen
        self.names = [_header_name(c, self.header_style, _key("hdr", st.code, d, feed, c)) for c in chosen]
        self.ext = ("csv" if fmt == "csv" else "jsonl") + (".gz" if self.gzip else "")

    def describe(self) -> dict:
        return {"format": self.fmt, "gzip": self.gzip, "bom": self.bom, "crlf": self.eol == "\r\n",
                "quote_all": self.quote_all, "header_style": self.header_style, "date_format": self.date_format,
                "time_style": self.time_style, "status_style": self.status_style, "columns": list(self.names)}


class _Dates:
    """Date strings of one format for every ordinal in [lo, hi]; index 0 is ''."""

    _cache: dict = {}

    def __init__(self, lo: int, hi: int, fmt: str):
        self.lo = lo
        key = (lo, hi, fmt)
        if key not in self._cache:
            self._cache[key] = _str_table([""] + [date.fromordinal(o).strftime(fmt) for o in range(lo, hi + 1)])
        self.table = self._cache[key]
        self.hi = hi

    def format(self, ords: np.ndarray, style: _Style, ent: np.ndarray, salt: int) -> pa.Array:
        ords = np.asarray(ords, dtype=np.int64)
        empty = ords == 0
        idx = np.where(empty, 0, np.clip(ords - self.lo + 1, 1, self.hi - self.lo + 1))
        out = _take(self.table, idx)
        if style.time_style and len(ords):
            t = _take(_catalog().times[style.time_style], _below(_key("tod", salt), ent, 256))
            out = pc.if_else(pa.array(empty), out, _join(out, t, sep=" "))
        return out


# ----------------------------------------------------------------------------------------------
# Bad rows
# ----------------------------------------------------------------------------------------------
# string-level overrides (applied after formatting)
O_BLANK = {f"blank:{c}": i + 1 for i, c in enumerate(sorted(set(REQUIRED["enrolment"]) | set(REQUIRED["completion"])))}
O_SPACES_DEPT = 20
O_BAD_REG, O_BAD_ENR, O_BAD_CMP = 21, 22, 23
O_BAD_STATUS, O_BAD_PROG, O_BAD_RATING, O_BAD_DUR = 24, 25, 26, 27
_BAD_DATES = ["31-02-2025", "2025-13-01", "32/01/2025", "2025-02-30", "00/00/0000", "TBD"]
_BAD_STATUS = ["Done", "3", "Finished", "Pending"]
_BAD_PROG = ["150", "-5", "101"]
_BAD_RATING = ["7", "-1", "5.5"]
_BAD_DUR = ["1200:00:00", "2h 30m", "01:30", "90 minutes"]
_BAD_USER_BASE = 1 << 40


def _take_rows(rows: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in rows.items()}


def _concat_rows(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _add_bad_rows(st: _State, rows: dict, d: int, feed: str, style: _Style, fraction: float, key: int):
    """Add bad rows (``fraction`` of the resulting rows) at hashed positions. Returns (rows, counts by code).

    Every bad row but an exact duplicate gets a key of its own (a fresh User_ID for the enrolment
    feed, a fresh Content_ID for the completion feed), so it never hides a good row; it breaks
    exactly the rule it is counted under (and no rule earlier in the contract's order).
    """
    n = len(rows["ent"])
    counts: dict[str, int] = {}
    if fraction <= 0 or n == 0:
        return rows, counts
    b = int(math.floor(n * fraction / (1.0 - fraction) + _sfloat(key)))
    if b == 0:
        return rows, counts
    codes = BAD_CODES_COMPLETION if feed == "completion" else BAD_CODES_ENROLMENT
    off = _mix_int(key ^ 7) % len(codes)
    plan: list[str] = []
    i = 0
    while len(plan) < b:
        code = codes[(off + i) % len(codes)]
        i += 1
        if code == "conflicting_duplicate":
            if b - len(plan) >= 2:
                plan += [code, code]
        else:
            plan.append(code)
    for code in plan:
        counts[code] = counts.get(code, 0) + 1
    bad = _take_rows(rows, _below(key ^ 11, np.arange(b), n))
    bad["good"][:] = False
    if "isnew" in bad:
        bad["isnew"][:] = False
    rep = st.start_ord + d
    rnd = [int(x) for x in _h(key ^ 13, np.arange(b))]
    cols = set(style.columns)
    i = 0
    while i < b:
        code, rr = plan[i], rnd[i]
        fresh_u = _BAD_USER_BASE + rr % _BAD_USER_BASE
        if code == "duplicate":  # an identical copy
            i += 1
            continue
        if feed == "enrolment":
            bad["u"][i] = bad["ent"][i] = fresh_u
            if code == "missing_required":
                c = REQUIRED["enrolment"][rr % 3]
                bad["ovr"][i] = O_SPACES_DEPT if (c == "Department" and (rr >> 8) & 1) else O_BLANK[f"blank:{c}"]
            elif code == "bad_date":
                bad["ovr"][i] = O_BAD_REG
            elif code == "future_date":
                bad["reg"][i] = rep + 1 + (rr >> 8) % 30
            elif code == "conflicting_duplicate":  # same new user twice, another department
                for k in bad:
                    bad[k][i + 1] = bad[k][i]
                bad["dept"][i + 1] = (bad["dept"][i] + 1) % len(st.depts)
                i += 1
        else:
            bad["cid"][i] = rr % 10**15
            if code == "missing_required":
                c = REQUIRED["completion"][rr % 6]
                bad["ovr"][i] = O_BLANK[f"blank:{c}"]
            elif code == "bad_date":
                bad["ovr"][i] = O_BAD_CMP if (bad["st"][i] == 2 and (rr >> 8) & 1) else O_BAD_ENR
            elif code == "future_date":
                ahead = rep + 1 + (rr >> 9) % 30
                if (rr >> 8) & 1:  # completed in the future
                    bad["st"][i], bad["cd"][i], bad["prog"][i] = 2, ahead, 100
                else:  # enrolled in the future
                    bad["st"][i], bad["cd"][i], bad["prog"][i], bad["cert"][i], bad["rating"][i] = 1, 0, 40, False, 0
                    bad["e"][i] = ahead
            elif code == "bad_value":
                options = [O_BAD_STATUS, O_BAD_DUR]
                if "Content_Progress_Percentage" in cols:
                    options.append(O_BAD_PROG)
                if "User_Rating" in cols:
                    options.append(O_BAD_RATING)
                bad["ovr"][i] = options[(rr >> 8) % len(options)]
            elif code == "completed_without_date":
                bad["st"][i], bad["cd"][i], bad["prog"][i] = 2, 0, 100
            elif code == "completed_before_enrolled":
                bad["st"][i], bad["prog"][i] = 2, 100
                bad["cd"][i] = bad["e"][i] - 1 - (rr >> 8) % 20
            elif code == "unknown_user":  # half of them: a user the state registers only tomorrow
                nxt, now = int(st.U[min(d + 1, st.H)]), int(st.U[d])
                bad["u"][i] = now + (rr >> 9) % (nxt - now) if ((rr >> 8) & 1 and nxt > now) else fresh_u
            elif code == "conflicting_duplicate":  # one key twice: In Progress and Completed
                for k in bad:
                    bad[k][i + 1] = bad[k][i]
                bad["st"][i], bad["cd"][i], bad["prog"][i], bad["cert"][i], bad["rating"][i] = 1, 0, 50, False, 0
                bad["st"][i + 1], bad["prog"][i + 1], bad["cd"][i + 1] = 2, 100, max(int(bad["e"][i]), rep - 1)
                i += 1
        i += 1
    both = _concat_rows([rows, bad])
    pos_good = np.arange(n, dtype=np.int64) * 2 + 1
    pos_bad = _below(key ^ 17, np.arange(b), n + 1) * 2
    order = np.argsort(np.concatenate([pos_good, pos_bad]), kind="stable")
    return _take_rows(both, order), counts


# ----------------------------------------------------------------------------------------------
# Rendering rows to bytes
# ----------------------------------------------------------------------------------------------
def _replace(arr: pa.Array, ovr: np.ndarray, code: int, values: list[str], key: int) -> pa.Array:
    mask = ovr == code
    m = int(mask.sum())
    if m == 0:
        return arr
    repl = pa.array([values[int(x)] for x in _below(key, np.nonzero(mask)[0], len(values))], type=pa.string())
    return pc.replace_with_mask(arr, pa.array(mask), repl)


def _person_columns(st: _State, u: np.ndarray, cols: set, out: dict):
    cat = _catalog()
    keys, idx = st.person(u)
    if "User_ID" in cols:
        out["User_ID"] = _uuid_array(_h(keys, idx), _h(keys ^ np.uint64(0x55AA), idx))
    if cols & {"Full_Name", "Email"}:
        hn = _h(keys ^ np.uint64(0x1234), idx)
        fi = (hn % np.uint64(len(_FIRST))).astype(np.int64)
        li = ((hn >> np.uint64(16)) % np.uint64(len(_LAST))).astype(np.int64)
        if "Full_Name" in cols:
            out["Full_Name"] = _join(_take(cat.first, fi), _take(cat.last, li), sep=" ")
        if "Email" in cols:
            num = _digits(((hn >> np.uint64(32)) % np.uint64(1000)).astype(np.int64), 1)
            dom = _take(st.email_domains, ((hn >> np.uint64(42)) % np.uint64(4)).astype(np.int64))
            out["Email"] = _join(_take(cat.first_lower, fi), pa.scalar("."), _take(cat.last_lower, li), num, pa.scalar("@"), dom)
    if "Phone_Number" in cols:
        hp = _h(keys ^ np.uint64(0x9876), idx)
        num = _digits((6_000_000_000 + hp % np.uint64(4_000_000_000)).astype(np.int64), 10)
        prefix = _take(_str_table(["", "", "", "+91-", "+91 "]), ((hp >> np.uint64(40)) % np.uint64(5)).astype(np.int64))
        out["Phone_Number"] = _join(prefix, num)


def _dept_column(st: _State, style: _Style, dept: np.ndarray, ent: np.ndarray) -> pa.Array:
    x = _u01(_key(st.seed, st.code, "dept-noise"), ent)
    var = np.zeros(len(dept), dtype=np.int64)
    if style.dept_noise:
        noisy = x < style.dept_noise
        var = np.where(noisy, 1 + _below(_key(st.seed, st.code, "dept-var"), ent, 3), 0)
    if style.nukta_share:
        y = _u01(_key(st.seed, st.code, "nukta"), ent)
        var = np.where(st.has_nukta[dept] & (y < style.nukta_share), 4, var)
    return _take(st.dept_table, dept * 5 + var)


def _format_enrolment(st: _State, rows: dict, d: int, style: _Style, dates: _Dates) -> dict:
    cols = set(style.columns)
    u, ent = rows["u"], rows["ent"]
    out: dict[str, pa.Array] = {}
    _person_columns(st, u, cols, out)
    dept = rows["dept"]
    out["Department"] = _dept_column(st, style, dept, ent)
    city = _below(st.K("city"), u, st.ncity)
    if "Organization" in cols:
        out["Organization"] = _take(st.org_table, dept * st.ncity + city)
    if "mdoid" in cols:
        out["mdoid"] = _take(st.mdo_table, dept * st.ncity + city)
    if "Designation" in cols:
        out["Designation"] = _take(st.desig_table, dept * 4 + _below(st.K("desig"), u, 4))
    if "Group" in cols:
        out["Group"] = _take(_catalog().groups, _pick(_catalog().group_cum, _u01(st.K("group"), u)))
    if "Employee_Id" in cols:
        out["Employee_Id"] = _join(pa.scalar(st.code), _digits(_below(st.K("empid"), u, 10**7), 7))
    out["User_Registration_Date"] = dates.format(rows["reg"], style, ent, _key(st.seed, st.code, "reg-time"))
    _extras(st, rows, d, style, dates, out)
    ovr = rows["ovr"]
    if ovr.any():
        k = _key(st.seed, st.code, d, "enrol-ovr")
        for c in REQUIRED["enrolment"]:
            out[c] = _replace(out[c], ovr, O_BLANK[f"blank:{c}"], [""], k)
        out["Department"] = _replace(out["Department"], ovr, O_SPACES_DEPT, ["   ", " "], k)
        out["User_Registration_Date"] = _replace(out["User_Registration_Date"], ovr, O_BAD_REG, _BAD_DATES, k)
    return out


def _extras(st, rows, d, style, dates, out):
    ent = rows["ent"]
    cols = set(style.columns)
    cat = _catalog()
    if "Remarks" in cols:
        out["Remarks"] = _take(cat.remarks, _below(_key(st.seed, st.code, "remarks"), ent, len(_REMARKS)))
    if "Data_Source" in cols:
        out["Data_Source"] = pa.array(np.full(len(ent), "iGOT Karmayogi Portal"), type=pa.string())
    for c in ("Last_Login", "Last_Accessed_On"):
        if c in cols:
            back = _below(_key(st.seed, st.code, c), ent, 30)
            out[c] = dates.format(st.start_ord + d - back, style, ent, _key(st.seed, st.code, c, "t"))


def _format_completion(st: _State, rows: dict, d: int, style: _Style, dates: _Dates) -> dict:
    cat = _catalog()
    cols = set(style.columns)
    u, ent, cm = rows["u"], rows["ent"], rows["cm"]
    out: dict[str, pa.Array] = {}
    _person_columns(st, u, cols, out)
    if "Department" in cols:
        out["Department"] = _dept_column(st, style, st.dept(np.where(u < _BAD_USER_BASE, u, 0), d), u)
    cid = rows["cid"]
    ids = _take(cat.ids, cm)
    if (cid >= 0).any():
        bad_ids = _join(pa.scalar("do_1140"), _digits(np.maximum(cid, 0), 17))
        ids = pc.if_else(pa.array(cid >= 0), bad_ids, ids)
    out["Content_ID"] = ids
    if "Batch_Id" in cols:
        month = rows["e"] // 30
        bnum = _digits((_h(_key("batch"), cm * 100_000 + month) % np.uint64(10**17)).astype(np.int64), 17)
        out["Batch_Id"] = pc.if_else(pa.array(cat.batched[cm]), _join(pa.scalar("01"), bnum), pa.scalar(""))
    out["Content_Name"] = _take(cat.names, cm)
    if "Content_Provider" in cols:
        out["Content_Provider"] = _take(cat.providers, cm)
    if "Content_Type" in cols:
        out["Content_Type"] = _take(cat.types, cm)
    out["Content_Duration"] = _take(cat.durations, cm)
    out["Enrolled_On"] = dates.format(rows["e"], style, ent, _key(st.seed, st.code, "enr-time"))
    out["Completed_On"] = dates.format(rows["cd"], style, ent, _key(st.seed, st.code, "cmp-time"))
    stt = rows["st"]
    if style.status_style == "mixed":
        variant = _below(_key(st.seed, st.code, "status-mix"), ent, 4)
        tables = [cat.status_tables[x] for x in ("title", "upper", "lower", "numeric")]
        mixed = pa.concat_arrays(tables)
        out["Status"] = _take(mixed, variant * 3 + stt)
    else:
        out["Status"] = _take(cat.status_tables[style.status_style], stt)
    if "Content_Progress_Percentage" in cols:
        show = (_u01(_key(st.seed, st.code, "prog-empty"), ent) > 0.03) | (stt == 2)
        out["Content_Progress_Percentage"] = _take(cat.numbers, np.where(show, rows["prog"] + 1, 0))
    if "Certificate_Generated" in cols:
        out["Certificate_Generated"] = _take(cat.yesno, rows["cert"].astype(np.int64))
    if "Certificate_ID" in cols:
        cert_ids = _uuid_array(_h(_key(st.seed, st.code, "cert"), ent), _h(_key(st.seed, st.code, "cert2"), ent))
        out["Certificate_ID"] = pc.if_else(pa.array(rows["cert"]), cert_ids, pa.scalar(""))
    if "User_Rating" in cols:
        out["User_Rating"] = _take(cat.ratings, rows["rating"])
    _extras(st, rows, d, style, dates, out)
    ovr = rows["ovr"]
    if ovr.any():
        k = _key(st.seed, st.code, d, "compl-ovr")
        for c in REQUIRED["completion"]:
            out[c] = _replace(out[c], ovr, O_BLANK[f"blank:{c}"], [""], k)
        out["Enrolled_On"] = _replace(out["Enrolled_On"], ovr, O_BAD_ENR, _BAD_DATES, k)
        out["Completed_On"] = _replace(out["Completed_On"], ovr, O_BAD_CMP, _BAD_DATES, k)
        out["Status"] = _replace(out["Status"], ovr, O_BAD_STATUS, _BAD_STATUS, k)
        out["Content_Duration"] = _replace(out["Content_Duration"], ovr, O_BAD_DUR, _BAD_DUR, k)
        if "Content_Progress_Percentage" in out:
            out["Content_Progress_Percentage"] = _replace(out["Content_Progress_Percentage"], ovr, O_BAD_PROG, _BAD_PROG, k)
        if "User_Rating" in out:
            out["User_Rating"] = _replace(out["User_Rating"], ovr, O_BAD_RATING, _BAD_RATING, k)
    return out


_NEEDS_QUOTE = '[",\r\n]'


def _csv_field(arr: pa.Array, canon: str, quote_all: bool) -> pa.Array:
    if quote_all:
        return _join(pa.scalar('"'), pc.replace_substring(arr, '"', '""'), pa.scalar('"'))
    if canon not in _TEXT_COLUMNS and canon not in {"Status", "Content_Duration", "User_Registration_Date", "Enrolled_On", "Completed_On"}:
        return arr
    mask = pc.match_substring_regex(arr, _NEEDS_QUOTE)
    if not pc.any(mask).as_py():
        return arr
    quoted = _join(pa.scalar('"'), pc.replace_substring(arr, '"', '""'), pa.scalar('"'))
    return pc.if_else(mask, quoted, arr)


def _json_escape(arr: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring_regex(arr, r'["\\\n\r\t]')).as_py():
        arr = pc.replace_substring(arr, "\\", "\\\\")
        arr = pc.replace_substring(arr, '"', '\\"')
        arr = pc.replace_substring(arr, "\n", "\\n")
        arr = pc.replace_substring(arr, "\r", "\\r")
        arr = pc.replace_substring(arr, "\t", "\\t")
    return arr


_NUMBER_RE = r"^-?[0-9]+(\.[0-9]+)?$"


def _array_bytes(arr: pa.Array):
    """The concatenated values of a string array, without a copy (a pyarrow Buffer)."""
    if arr.offset != 0:
        arr = pa.concat_arrays([arr])
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1)
    data = arr.buffers()[2]
    if data is None:
        return b""
    return data.slice(int(offs[0]), int(offs[-1]) - int(offs[0]))


def _render_csv(out: dict, style: _Style, n: int) -> bytes:
    if n == 0:
        return b""
    fields = [_csv_field(out[c], c, style.quote_all) for c in style.columns]
    fields[-1] = _join(fields[-1], pa.scalar(style.eol))
    return _array_bytes(_join(*fields, sep=","))


def _render_jsonl(out: dict, style: _Style, n: int):
    """One JSON object per line. Empty values are a missing key (in states that omit them; for
    required columns of bad rows in half the cases) or "", except in the first field."""
    if n == 0:
        return b""
    pieces = []
    required = set(REQUIRED["completion"] + REQUIRED["enrolment"])
    for i, (canon, name) in enumerate(zip(style.columns, style.names)):
        arr = out[canon]
        key = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
        quoted = _join(pa.scalar(key + '"'), _json_escape(arr), pa.scalar('"'))
        if style.json_numbers and (canon in _JSON_NUMERIC or (canon == "Status" and style.status_style == "numeric")):
            isnum = pc.match_substring_regex(arr, _NUMBER_RE)
            piece = pc.if_else(isnum, _join(pa.scalar(key), arr), quoted)
        else:
            piece = quoted
        if i > 0 and (style.json_omit_empty or canon in required):
            empty = pc.equal(arr, "")
            if pc.any(empty).as_py():
                if not style.json_omit_empty:
                    empty = pc.and_(empty, pa.array(_u01(_key("json-omit", canon), np.arange(n)) < 0.5))
                piece = pc.if_else(empty, pa.scalar(""), piece)
        pieces.append(piece)
    return _array_bytes(_join(*pieces, pa.scalar("}\n")))


# ----------------------------------------------------------------------------------------------
# Writing a feed file: chunks rendered (and deflated) in a thread pool, hashed and written in order
# ----------------------------------------------------------------------------------------------
_GZ_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


_CRC_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order), as in zlib."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return p


_X2N = []
_p = 1 << 30  # x^1
for _n in range(32):
    _X2N.append(_p)
    _p = _multmodp(_p, _p)


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    n, k, p = len2, 3, 1 << 31  # x^(8 * len2)
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


def _deflate(raw) -> bytes:
    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15, 9)
    return c.compress(raw) + c.flush(zlib.Z_SYNC_FLUSH)


def _ordered(pool, fn, items, ahead: int):
    q: deque = deque()
    for x in items:
        q.append(pool.submit(fn, x))
        if len(q) >= ahead:
            yield q.popleft().result()
    while q:
        yield q.popleft().result()


class _Job:
    """One feed file of one delivery."""

    def __init__(self, st: _State, d: int, feed: str, bad_rows: float, lo: int, hi: int):
        self.st, self.d, self.feed, self.bad_rows = st, d, feed, bad_rows
        self.style = _Style(st, d, feed)
        self.dates = _Dates(lo, hi, self.style.date_format)
        self.pieces = st.enrolment_pieces(d) if feed == "enrolment" else st.completion_pieces(d)
        self.name = f"{feed}.{self.style.ext}"

    def render(self, i: int):
        st, d, feed, style = self.st, self.d, self.feed, self.style
        piece = self.pieces[i]
        rows = st.enrolment_rows(piece, d) if feed == "enrolment" else st.completion_rows(piece, d)
        stats = _stats(st, rows, feed)
        rows, bad = _add_bad_rows(st, rows, d, feed, style, self.bad_rows,
                                  _key(st.seed, st.code, d, feed, "bad", i))
        n = len(rows["ent"])
        fmt = _format_enrolment if feed == "enrolment" else _format_completion
        out = fmt(st, rows, d, style, self.dates) if n else {}
        raw = _render_csv(out, style, n) if style.fmt == "csv" else _render_jsonl(out, style, n)
        if style.gzip:  # deflated here, in the worker; the file keeps a CRC of the raw bytes
            return None, (_deflate(raw), zlib.crc32(raw), len(raw)), n, bad, stats
        return raw, None, n, bad, stats


def _stats(st: _State, rows: dict, feed: str) -> dict | None:
    if feed != "completion":
        return None
    done = rows["st"] == 2
    return {
        "rows": int(len(rows["st"])),
        "new": int(rows["isnew"].sum()),
        "completed": int(done.sum()),
        "seconds": int(_catalog().seconds[rows["cm"][done]].sum()),
        "certs": int((rows["cert"] & done).sum()),
        "users_completed": rows["u"][done],
        "cd": rows["cd"][done],
    }


def _write_file(job: _Job, path: Path, pool) -> dict:
    style = job.style
    sha = hashlib.sha256()
    crc, size, rows, written = 0, 0, 0, 0
    bad: dict[str, int] = {}
    stats = []
    with open(path, "wb") as fh:

        def put(b: bytes):
            nonlocal written
            if b:
                sha.update(b)
                fh.write(b)
                written += len(b)

        head = b""
        if style.fmt == "csv":
            names = [n if not any(ch in n for ch in ',"\r\n') else '"' + n.replace('"', '""') + '"' for n in style.names]
            head = (("\ufeff" if style.bom else "") + ",".join(names) + style.eol).encode("utf-8")
        if style.gzip:
            put(_GZ_HEADER)
            if head:
                put(_deflate(head))
        else:
            put(head)
        crc = zlib.crc32(head)
        size = len(head)
        if len(job.pieces) <= 1 or pool is None:
            results = (job.render(i) for i in range(len(job.pieces)))
        else:
            results = _ordered(pool, job.render, range(len(job.pieces)), WORKERS + 1)
        for raw, comp, n, b, s in results:
            rows += n
            for k, v in b.items():
                bad[k] = bad.get(k, 0) + v
            if s is not None:
                stats.append(s)
            if style.gzip:
                data, chunk_crc, chunk_len = comp
                crc = _crc32_combine(crc, chunk_crc, chunk_len)
                size += chunk_len
                put(data)
            else:
                put(raw)
        if style.gzip:
            put(zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
            put(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return {"feed": job.feed, "name": job.name, "rows": rows, "sha256": sha.hexdigest(), "bytes": written,
            "bad": dict(sorted(bad.items())), **style.describe(), "_stats": stats}


# ----------------------------------------------------------------------------------------------
# Expected figures (from the good rows)
# ----------------------------------------------------------------------------------------------
class _Truth:
    def __init__(self, st: _State, lo: int, hi: int):
        self.st = st
        self.lo, self.hi = lo, hi
        self.per_user = np.zeros(int(st.U[min(st.days, st.H)]) + 1, dtype=np.int32)
        self.cd_hist = np.zeros(hi - lo + 2, dtype=np.int64)
        self.rows = self.completed = self.seconds = self.certs = 0

    def apply(self, stats: list[dict], snapshot: bool):
        if snapshot:
            self.per_user[:] = 0
            self.cd_hist[:] = 0
            self.rows = self.completed = self.seconds = self.certs = 0
        for s in stats:
            self.rows += s["rows"] if snapshot else s["new"]
            self.completed += s["completed"]
            self.seconds += s["seconds"]
            self.certs += s["certs"]
            if len(s["users_completed"]):
                np.add.at(self.per_user, s["users_completed"], 1)
                np.add.at(self.cd_hist, np.clip(s["cd"] - self.lo, 0, len(self.cd_hist) - 1), 1)

    def figures(self, d: int) -> dict:
        st = self.st
        rep = st.start_ord + d
        users = np.arange(int(st.U[d]), dtype=np.int64)
        alive = ~st.removed_mask(users, d)
        jan1 = date(date.fromordinal(rep).year, 1, 1).toordinal()
        reg = st.reg_ord(users)
        cnt = self.per_user[: len(users)][alive]
        lo_i = max(0, jan1 - self.lo)
        hi_i = rep - self.lo + 1
        return {
            "registered_users": int(alive.sum()),
            "users_with_completion": int((cnt > 0).sum()),
            "users_with_3plus_completions": int((cnt >= 3).sum()),
            "course_enrolments": int(self.rows),
            "course_completions": int(self.completed),
            "learning_hours": round(self.seconds / 3600.0, 2),
            "certificates_issued": int(self.certs),
            "registrations_ytd": int(((reg >= jan1) & (reg <= rep) & alive).sum()),
            "completions_ytd": int(self.cd_hist[lo_i:hi_i].sum()),
        }


# ----------------------------------------------------------------------------------------------
# The public API
# ----------------------------------------------------------------------------------------------
def _skipped_states(codes: list[str], seed: int) -> list[str]:
    if len(codes) < 2:
        return []
    k = 2 if len(codes) >= 10 else 1
    return sorted(codes, key=lambda c: _key(seed, "skip", c))[:k]


def _write_manifest(folder: Path, manifest: dict):
    tmp = folder / ".manifest.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, folder / "manifest.json")


def generate(landing, start, days: int, scale: float = 0.001, seed: int = 0, bad_rows: float = 0.0,
             states: list[str] | None = None, plain_csv: bool = False) -> dict:
    """Write sample deliveries for report dates start .. start+days-1; return a JSON-able summary.

    ``plain_csv`` writes every file as uncompressed CSV (the benchmark compares
    against a raw bulk load of the same CSV files)."""
    from .states import registry

    global _PLAIN_CSV
    _PLAIN_CSV = bool(plain_csv)

    t0 = time.perf_counter()
    if isinstance(start, str):
        start = date.fromisoformat(start)
    elif isinstance(start, datetime):
        start = start.date()
    if not isinstance(start, date):
        raise ValueError(f"start must be a date or YYYY-MM-DD, not {start!r}")
    days = int(days)
    if days < 1:
        raise ValueError("days must be >= 1")
    if not scale > 0:
        raise ValueError("scale must be > 0")
    if not 0 <= bad_rows < 0.5:
        raise ValueError("bad_rows must be within 0 .. 0.5")
    reg = registry()
    codes = list(reg)
    if states:
        wanted = []
        for c in states:
            c = c.strip().upper()
            if c not in reg:
                raise ValueError(f"unknown state {c!r}; configured: {', '.join(codes)}")
            if c not in wanted:
                wanted.append(c)
    else:
        wanted = codes
    landing = Path(landing)
    skipped = set(_skipped_states(codes, seed)) if days >= 2 else set()
    lo, hi = start.toordinal() - REG_SPAN_DAYS - 200, start.toordinal() + days + 120
    summary = {
        "landing": str(landing), "start": start.isoformat(), "days": days, "scale": scale, "seed": seed,
        "bad_rows": bad_rows, "states": {}, "skipped": [],
    }
    totals = {"deliveries": 0, "files": 0, "bytes": 0, "rows": {"enrolment": 0, "completion": 0}, "bad": {}}
    pool = ThreadPoolExecutor(WORKERS) if WORKERS > 1 else None
    try:
        for code in wanted:
            sobj = reg[code]
            st = _State(code, sobj.name, codes.index(code), codes, start, days, scale, seed)
            root = sobj.landing_path(landing)
            truth = _Truth(st, lo, hi)
            info = {
                "name": sobj.name, "pattern": st.pattern, "users_at_start": st.U0, "completion_rows_at_start": st.E0,
                "transfer_partner": st.partner[0] if st.partner else None, "deliveries": {},
            }
            summary["states"][code] = info
            for d in range(days):
                rdate = (start + timedelta(days=d)).isoformat()
                if code in skipped and d == days - 1:
                    summary["skipped"].append({"state": code, "report_date": rdate})
                    continue
                folder = root / rdate
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "manifest.json").unlink(missing_ok=True)  # a re-generated folder is "uploading"
                for old in folder.iterdir():
                    if old.name.startswith(("enrolment.", "completion.")):
                        old.unlink()
                mode = st.mode[d]
                feeds = list(FEEDS)
                if st.quiet_c[d]:
                    feeds = ["enrolment"]
                elif st.quiet_e[d]:
                    feeds = ["completion"]
                if mode == "delta":  # a feed without changes is not sent (both when nothing changed)
                    sized = [f for f in feeds if st.delta_rows(d, f)]
                    feeds = sized or feeds
                files = []
                stats = []
                for feed in feeds:
                    job = _Job(st, d, feed, bad_rows, lo, hi)
                    res = _write_file(job, folder / job.name, pool)
                    stats += res.pop("_stats")
                    files.append(res)
                truth.apply(stats, mode == "snapshot")
                _write_manifest(folder, {
                    "state": code, "report_date": rdate, "mode": mode,
                    "files": [{"feed": f["feed"], "name": f["name"], "rows": f["rows"], "sha256": f["sha256"]} for f in files],
                })
                info["deliveries"][rdate] = {"mode": mode, "path": str(folder), "files": files,
                                             "expected": truth.figures(d)}
                totals["deliveries"] += 1
                for f in files:
                    totals["files"] += 1
                    totals["bytes"] += f["bytes"]
                    totals["rows"][f["feed"]] += f["rows"]
                    for k, v in f["bad"].items():
                        totals["bad"][k] = totals["bad"].get(k, 0) + v
            del st, truth
    finally:
        if pool is not None:
            pool.shutdown()
    totals["states"] = len(wanted)
    totals["seconds"] = round(time.perf_counter() - t0, 3)
    summary["totals"] = totals
    return summary


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="write sample deliveries for the MoU states into a landing zone")
    p.add_argument("--landing", default=None, help="landing zone (default $MOU_LANDING_DIR)")
    p.add_argument("--start", required=True, help="first report date YYYY-MM-DD")
    p.add_argument("--days", required=True, type=int, help="number of report dates")
    p.add_argument("--scale", type=float, default=0.001, help="volume scale; 1.0 = public figures (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bad-rows", type=float, default=0.0, dest="bad_rows",
                   help="fraction of bad rows added to every feed file (default 0)")
    p.add_argument("--state", action="append", default=None, help="state code (repeatable; default all)")
    p.add_argument("--summary", default=None, help="also write the full JSON summary to this file")
    p.set_defaults(func=_command)


def _command(args) -> int:
    from . import settings

    landing = args.landing or str(settings.landing_dir())
    s = generate(landing, args.start, args.days, scale=args.scale, seed=args.seed, bad_rows=args.bad_rows,
                 states=args.state)
    if args.summary:
        Path(args.summary).write_text(json.dumps(s, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    t = s["totals"]
    skipped = ", ".join(f"{x['state']} {x['report_date']}" for x in s["skipped"]) or "none"
    bad = sum(t["bad"].values())
    print(f"generated {t['states']} states x {s['days']} days into {s['landing']}: {t['deliveries']} deliveries, "
          f"{t['files']} files, {t['rows']['enrolment']:,} enrolment rows, {t['rows']['completion']:,} completion rows, "
          f"{bad:,} bad rows, {t['bytes'] / 1e6:,.1f} MB in {t['seconds']:.1f} s; skipped: {skipped}")
    return 0
