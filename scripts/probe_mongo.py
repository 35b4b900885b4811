#!/usr/bin/env python3
"""Probe what the MongoDB-wire server (SecantusDB or mongod) supports.

Manual tool, not part of CI. Run with the project venv:

    .local/venv/bin/python scripts/probe_mongo.py [URI] [--only a,b,...] [--skip-restart]

URI defaults to the contents of .local/mongo/uri (see scripts/mongo.sh).
Section h starts its own private server (from `scripts/mongo.sh bin`) on a
free port and kills it; it never touches the shared one.
Each probe prints OK/FAIL lines and the raw response shapes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pprint
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from bson import SON
from pymongo import MongoClient, WriteConcern
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parent.parent
RESULTS: list[tuple[str, str, str]] = []


def record(name: str, ok: bool, detail: str = "") -> None:
    status = "OK  " if ok else "FAIL"
    RESULTS.append((name, status, detail))
    print(f"[{status}] {name}" + (f" -- {detail}" if detail else ""))


def show(label: str, value) -> None:
    text = pprint.pformat(value, width=110, compact=True)
    if len(text) > 1500:
        text = text[:1500] + " ...(cut)"
    print(f"    {label}: {text}")


def strip(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k not in ("$clusterTime", "operationTime", "opTime", "electionId")}


def attempt(name: str, fn, expect=None):
    """Run fn(); record OK if it raises nothing and expect(result) is truthy."""
    try:
        res = fn()
    except PyMongoError as e:
        detail = getattr(e, "details", None)
        record(name, False, f"{type(e).__name__}: {str(e)[:300]}")
        if detail:
            show("error details", strip(detail) if isinstance(detail, dict) else detail)
        return None
    except Exception as e:  # noqa: BLE001
        record(name, False, f"{type(e).__name__}: {e}")
        traceback.print_exc(limit=2)
        return None
    if expect is not None:
        try:
            good = expect(res)
        except Exception as e:  # noqa: BLE001
            good = False
            record(name, False, f"check raised {type(e).__name__}: {e}; result={str(res)[:300]}")
            return res
        record(name, bool(good), "" if good else f"unexpected result: {str(res)[:400]}")
    else:
        record(name, True)
    return res


# ------------------------------------------------------------------ a / b


def probe_upserts(db, kind: str) -> None:
    """kind: 'replace' or 'set'."""
    tag = "a" if kind == "replace" else "b"
    coll = db[f"up_{kind}"]
    coll.drop()

    def stmt(_id: str, version: int, title: str) -> dict:
        q = {"_id": _id, "version": {"$lt": version}}
        if kind == "replace":
            u = {"_id": _id, "version": version, "title": title}
        else:
            u = {"$set": {"version": version, "title": title}}
        return {"q": q, "u": u, "upsert": True}

    first = [stmt(f"d{i}", 3, f"v3-{i}") for i in range(50)]
    r1 = db.command(SON([("update", coll.name), ("updates", first), ("ordered", False)]))
    show(f"{tag}1 fresh upserts response (first 3 upserted)", {**strip(r1), "upserted": r1.get("upserted", [])[:3]})
    record(
        f"{tag}1 {kind}: 50 fresh upserts",
        r1.get("ok") == 1 and r1.get("n") == 50 and len(r1.get("upserted", [])) == 50 and coll.count_documents({}) == 50,
        f"n={r1.get('n')} nModified={r1.get('nModified')} upserted={len(r1.get('upserted', []))}",
    )

    # Mixed batch: stale (v2 < stored v3), equal (v3), newer (v4), and brand new ids.
    mixed = (
        [stmt("d0", 2, "stale")]
        + [stmt("d1", 3, "same")]
        + [stmt("d2", 4, "newer")]
        + [stmt("new0", 1, "new")]
        + [stmt("d3", 1, "stale2")]
        + [stmt("d4", 5, "newer2")]
        + [stmt("new1", 1, "new")]
    )
    try:
        r2 = db.command(SON([("update", coll.name), ("updates", mixed), ("ordered", False)]))
        show(f"{tag}2 mixed response", strip(r2))
    except PyMongoError as e:
        r2 = getattr(e, "details", {}) or {}
        show(f"{tag}2 mixed raised {type(e).__name__}; details", strip(r2))
    errs = r2.get("writeErrors", [])
    codes = sorted({e.get("code") for e in errs})
    idx = sorted(e.get("index") for e in errs)
    docs = {d["_id"]: d for d in coll.find({"_id": {"$in": ["d0", "d1", "d2", "d3", "d4", "new0", "new1"]}})}
    applied = (
        docs.get("d2", {}).get("version") == 4
        and docs.get("d4", {}).get("version") == 5
        and "new0" in docs
        and "new1" in docs
        and docs["d0"]["version"] == 3
        and docs["d0"]["title"] == "v3-0"
        and docs["d3"]["version"] == 3
        and docs["d1"]["title"] == "v3-1"
    )
    record(
        f"{tag}2 {kind}: stale/equal version -> writeErrors 11000 per statement",
        codes == [11000] and idx == [0, 1, 4],
        f"writeErrors indexes={idx} codes={codes} n={r2.get('n')} nModified={r2.get('nModified')}",
    )
    if errs:
        show(f"{tag}2 first writeError", errs[0])
    record(f"{tag}2 {kind}: other statements of the unordered command still applied", applied,
           f"docs={ {k: (v.get('version'), v.get('title')) for k, v in docs.items()} }")

    # Ordered=true: stops at first error?
    coll2 = db[f"up_{kind}_ordered"]
    coll2.drop()
    coll2.insert_one({"_id": "x", "version": 5, "title": "t"})
    try:
        r3 = db.command(SON([("update", coll2.name), ("updates", [stmt("x", 1, "s"), stmt("y", 1, "y")]), ("ordered", True)]))
    except PyMongoError as e:
        r3 = getattr(e, "details", {}) or {}
    record(f"{tag}3 {kind}: ordered=true stops after the first 11000",
           coll2.count_documents({"_id": "y"}) == 0 and len(r3.get("writeErrors", [])) == 1,
           f"response={strip(r3)}")

    # pymongo bulk_write (what drivers do) raises BulkWriteError with the same writeErrors.
    from pymongo import ReplaceOne, UpdateOne
    from pymongo.errors import BulkWriteError

    if kind == "replace":
        ops = [ReplaceOne({"_id": "d0", "version": {"$lt": 1}}, {"_id": "d0", "version": 1}, upsert=True),
               ReplaceOne({"_id": "bw", "version": {"$lt": 1}}, {"_id": "bw", "version": 1}, upsert=True)]
    else:
        ops = [UpdateOne({"_id": "d0", "version": {"$lt": 1}}, {"$set": {"version": 1}}, upsert=True),
               UpdateOne({"_id": "bw", "version": {"$lt": 1}}, {"$set": {"version": 1}}, upsert=True)]
    try:
        coll.bulk_write(ops, ordered=False)
        record(f"{tag}4 {kind}: driver bulk_write(ordered=False) with a stale op", False, "no BulkWriteError raised")
    except BulkWriteError as e:
        d = e.details
        show(f"{tag}4 BulkWriteError.details", {k: d[k] for k in ("writeErrors", "nUpserted", "nMatched", "nModified", "upserted") if k in d})
        record(f"{tag}4 {kind}: driver bulk_write(ordered=False) raises BulkWriteError(11000), rest applied",
               [w["code"] for w in d["writeErrors"]] == [11000] and coll.count_documents({"_id": "bw"}) == 1)

    # Deleted tombstone semantic: upsert over a doc marked deleted with a higher version must be refused.
    coll.replace_one({"_id": "tomb"}, {"_id": "tomb", "version": 9, "deleted": True}, upsert=True)
    try:
        r5 = db.command(SON([("update", coll.name), ("updates", [stmt("tomb", 8, "resurrect")]), ("ordered", False)]))
    except PyMongoError as e:
        r5 = getattr(e, "details", {}) or {}
    record(f"{tag}5 {kind}: late event cannot resurrect a tombstone (version 9 kept)",
           coll.find_one({"_id": "tomb"})["deleted"] is True and r5.get("writeErrors", [{}])[0].get("code") == 11000)


# ------------------------------------------------------------------ c


def probe_indexes(db) -> None:
    c = db["idx"]
    c.drop()
    c.insert_many([
        {"_id": "u1", "user_id": "a", "day": 1, "tags": ["x", "y"], "email": "a@x", "deleted": False},
        {"_id": "u2", "user_id": "b", "day": 2, "tags": ["y"], "email": "b@x", "deleted": True},
    ])
    specs = [
        {"key": SON([("user_id", 1), ("day", -1)]), "name": "user_day"},
        {"key": {"tags": 1}, "name": "tags_multikey"},
        {"key": {"email": 1}, "name": "email_unique", "unique": True},
        {"key": {"user_id": 1}, "name": "live_by_user", "partialFilterExpression": {"deleted": False}},
    ]
    r = attempt("c1 createIndexes (compound, multikey, unique, partial) in one command",
                lambda: db.command(SON([("createIndexes", "idx"), ("indexes", specs)])),
                lambda r: r.get("ok") == 1)
    if r:
        show("c1 response", strip(r))
    r = attempt("c2 createIndexes same specs again (idempotent)",
                lambda: db.command(SON([("createIndexes", "idx"), ("indexes", specs)])),
                lambda r: r.get("ok") == 1)
    if r:
        show("c2 response", strip(r))
    li = attempt("c3 listIndexes", lambda: list(c.list_indexes()), lambda r: len(r) == 5)
    if li:
        show("c3 listIndexes", [dict(i) for i in li])
    attempt("c4 unique index enforced (insert dup email -> 11000)",
            lambda: _expect_dup(lambda: c.insert_one({"_id": "u3", "email": "a@x"})), lambda r: r)
    attempt("c5 createIndexes same name, different key -> error",
            lambda: _expect_error(lambda: db.command(SON([("createIndexes", "idx"), ("indexes", [{"key": {"day": 1}, "name": "user_day"}])]))),
            lambda r: r)
    attempt("c6 create_index() helper (pymongo) twice", lambda: (c.create_index([("day", 1)]), c.create_index([("day", 1)])),
            lambda r: r[0] == r[1] == "day_1")
    attempt("c7 unique index creation fails on existing duplicates",
            lambda: _expect_error(lambda: (c.insert_one({"_id": "u4", "day": 1, "user_id": "a"}),
                                           c.create_index([("user_id", 1), ("day", 1)], unique=True))),
            lambda r: r)
    attempt("c8 dropIndexes by name", lambda: c.drop_index("tags_multikey"), lambda r: True)
    attempt("c9 createIndexes on a not-yet-existing collection creates it",
            lambda: (db["idx_new"].create_index("a"), "idx_new" in db.list_collection_names())[1], lambda r: r)
    attempt("c10 text index", lambda: db["idx"].create_index([("email", "text")]), lambda r: True)
    attempt("c11 TTL index (expireAfterSeconds)", lambda: db["idx"].create_index("ts", expireAfterSeconds=60), lambda r: True)


def _expect_dup(fn):
    from pymongo.errors import DuplicateKeyError
    try:
        fn()
    except DuplicateKeyError as e:
        show("dup error", {"code": e.code, "msg": str(e)[:200]})
        return True
    return False


def _expect_error(fn):
    try:
        fn()
    except PyMongoError as e:
        show("expected error", {"type": type(e).__name__, "code": getattr(e, "code", None), "msg": str(e)[:200]})
        return True
    return False


# ------------------------------------------------------------------ d


def probe_queries(db) -> None:
    c = db["q"]
    c.drop()
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    docs = []
    for i in range(200):
        docs.append({
            "_id": f"id{i:03d}",
            "user_id": f"u{i % 5}",
            "score": i % 17,
            "name": f"name{i:03d}",
            "tags": [f"t{i % 3}", f"t{i % 7}"],
            "at": base + dt.timedelta(hours=i),
            "nested": {"a": i % 2},
        })
    c.insert_many(docs)
    c.create_index([("user_id", 1), ("score", -1)], name="user_score")

    attempt("d1 $in on array field", lambda: c.count_documents({"tags": {"$in": ["t1", "t5"]}}),
            lambda n: n == sum(1 for d in docs if set(d["tags"]) & {"t1", "t5"}))
    attempt("d2 $all on array field", lambda: c.count_documents({"tags": {"$all": ["t0", "t0"]}}),
            lambda n: n == sum(1 for d in docs if "t0" in d["tags"]))
    attempt("d2b $all two values", lambda: c.count_documents({"tags": {"$all": ["t1", "t2"]}}),
            lambda n: n == sum(1 for d in docs if {"t1", "t2"} <= set(d["tags"])))
    exp = sorted(docs, key=lambda d: (d["user_id"], -d["score"], d["_id"]))[10:25]
    attempt("d3 sort user_id asc, score desc, _id asc + skip 10 limit 15",
            lambda: [d["_id"] for d in c.find({}).sort([("user_id", 1), ("score", -1), ("_id", 1)]).skip(10).limit(15)],
            lambda r: r == [d["_id"] for d in exp])
    lo, hi = base + dt.timedelta(hours=10), base + dt.timedelta(hours=20)
    attempt("d4 $gt/$lt on BSON datetime", lambda: c.count_documents({"at": {"$gt": lo, "$lt": hi}}), lambda n: n == 9)
    got = attempt("d4b datetime round-trip type", lambda: c.find_one({"_id": "id010"})["at"],
                  lambda v: isinstance(v, dt.datetime) and v.replace(tzinfo=dt.timezone.utc) == lo)
    if got is not None:
        show("d4b stored value", got)
    attempt("d5 $gte/$lt on strings", lambda: c.count_documents({"name": {"$gte": "name050", "$lt": "name060"}}), lambda n: n == 10)
    attempt("d6 projection include", lambda: c.find_one({"_id": "id001"}, {"name": 1, "nested.a": 1}),
            lambda d: set(d) == {"_id", "name", "nested"} and d["nested"] == {"a": 1})
    attempt("d6b projection exclude _id", lambda: c.find_one({"_id": "id001"}, {"_id": 0, "name": 1}), lambda d: d == {"name": "name001"})
    attempt("d6c projection exclusion", lambda: c.find_one({"_id": "id001"}, {"tags": 0, "at": 0, "nested": 0}),
            lambda d: set(d) == {"_id", "user_id", "score", "name"})
    attempt("d7 count_documents with filter", lambda: c.count_documents({"user_id": "u1"}), lambda n: n == 40)
    attempt("d7b estimated_document_count", lambda: c.estimated_document_count(), lambda n: n == 200)
    attempt("d7c count_documents with skip/limit", lambda: c.count_documents({}, skip=190, limit=50), lambda n: n == 10)
    attempt("d8 find with hint (index name)", lambda: len(list(c.find({"user_id": "u2"}).hint("user_score"))), lambda n: n == 40)
    attempt("d8b find with hint (key pattern)", lambda: len(list(c.find({"user_id": "u2"}).hint([("user_id", 1), ("score", -1)]))), lambda n: n == 40)
    attempt("d8c hint on a non-existent index -> error", lambda: _expect_error(lambda: list(c.find({}).hint("nope"))), lambda r: r)
    plan = attempt("d9 explain", lambda: c.find({"user_id": "u2"}).explain(), lambda r: True)
    if plan:
        show("d9 explain winningPlan", plan.get("queryPlanner", {}).get("winningPlan", plan))
    attempt("d10 $regex prefix", lambda: c.count_documents({"name": {"$regex": "^name01"}}), lambda n: n == 10)
    attempt("d11 $or / $exists / $ne / $nin", lambda: c.count_documents({"$or": [{"score": 0}, {"score": {"$exists": False}}], "user_id": {"$nin": ["u0"]}, "nested.a": {"$ne": 5}}),
            lambda n: n == sum(1 for d in docs if d["score"] == 0 and d["user_id"] != "u0"))
    attempt("d12 $elemMatch", lambda: c.count_documents({"tags": {"$elemMatch": {"$eq": "t6"}}}), lambda n: n == sum(1 for d in docs if "t6" in d["tags"]))
    attempt("d13 distinct", lambda: sorted(c.distinct("user_id")), lambda r: r == ["u0", "u1", "u2", "u3", "u4"])
    attempt("d14 find batchSize + getMore over 200 docs", lambda: len(list(c.find({}, batch_size=7))), lambda n: n == 200)
    attempt("d15 find_one_and_update returnDocument after", lambda: c.find_one_and_update({"_id": "id000"}, {"$inc": {"score": 1}}, return_document=True),
            lambda d: d["score"] == 1)
    attempt("d16 delete_many", lambda: c.delete_many({"user_id": "u4"}).deleted_count, lambda n: n == 40)


# ------------------------------------------------------------------ e


def probe_aggregation(db) -> None:
    c = db["agg"]
    c.drop()
    base = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
    docs = [{"_id": i, "user": f"u{i % 4}", "minutes": i % 50, "room": f"r{i % 3}",
             "tags": [f"t{i % 2}", f"t{i % 5}"], "at": base + dt.timedelta(hours=7 * i)} for i in range(100)]
    c.insert_many(docs)
    db["users_agg"].drop()
    db["users_agg"].insert_many([{"_id": f"u{i}", "name": f"User {i}"} for i in range(4)])

    def agg(name, pipeline, check, show_result=True):
        r = attempt(name, lambda: list(c.aggregate(pipeline)), check)
        if r is not None and show_result:
            show(name.split()[0] + " result", r[:3])
        return r

    agg("e1 $match+$group $sum/$addToSet+$sort+$skip+$limit",
        [{"$match": {"minutes": {"$gt": 0}}},
         {"$group": {"_id": "$user", "total": {"$sum": "$minutes"}, "n": {"$sum": 1}, "rooms": {"$addToSet": "$room"}}},
         {"$sort": {"total": -1, "_id": 1}}, {"$skip": 1}, {"$limit": 2}],
        lambda r: len(r) == 2 and all(isinstance(x["rooms"], list) for x in r))
    agg("e2 $project (computed, $cond)", [{"$project": {"_id": 0, "user": 1, "hours": {"$divide": ["$minutes", 60]},
                                                        "long": {"$cond": [{"$gte": ["$minutes", 30]}, True, False]}}}, {"$limit": 2}],
        lambda r: set(r[0]) == {"user", "hours", "long"})
    agg("e3 $unwind", [{"$unwind": "$tags"}, {"$count": "n"}], lambda r: r == [{"n": 200}])
    agg("e4 $count", [{"$match": {"user": "u1"}}, {"$count": "n"}], lambda r: r == [{"n": 25}])
    agg("e5 $facet", [{"$facet": {"total": [{"$count": "n"}], "top": [{"$sort": {"minutes": -1}}, {"$limit": 2}, {"$project": {"minutes": 1}}]}}],
        lambda r: r[0]["total"] == [{"n": 100}] and len(r[0]["top"]) == 2)
    agg("e6 $lookup (localField/foreignField)", [{"$match": {"_id": {"$lt": 3}}}, {"$lookup": {"from": "users_agg", "localField": "user", "foreignField": "_id", "as": "u"}}],
        lambda r: all(len(x["u"]) == 1 for x in r))
    agg("e6b $lookup with pipeline/let", [{"$match": {"_id": 1}}, {"$lookup": {"from": "users_agg", "let": {"uid": "$user"},
                                                                                   "pipeline": [{"$match": {"$expr": {"$eq": ["$_id", "$$uid"]}}}], "as": "u"}}],
        lambda r: len(r[0]["u"]) == 1)
    agg("e7 $setWindowFields $rank", [{"$group": {"_id": "$user", "total": {"$sum": "$minutes"}}},
                                     {"$setWindowFields": {"sortBy": {"total": -1}, "output": {"rank": {"$rank": {}}}}}],
        lambda r: sorted(x["rank"] for x in r) == [1, 2, 3, 4] or len({x["rank"] for x in r}) >= 1)
    agg("e7b $setWindowFields partitionBy + $denseRank + $sum window", [{"$setWindowFields": {"partitionBy": "$room", "sortBy": {"minutes": -1},
                                                                                           "output": {"dr": {"$denseRank": {}},
                                                                                                      "cum": {"$sum": "$minutes", "window": {"documents": ["unbounded", "current"]}}}}},
                                                                      {"$limit": 3}],
        lambda r: "dr" in r[0] and "cum" in r[0])
    agg("e8 $dateTrunc (week, UTC) in $group", [{"$group": {"_id": {"$dateTrunc": {"date": "$at", "unit": "week", "startOfWeek": "monday"}}, "m": {"$sum": "$minutes"}}},
                                               {"$sort": {"_id": 1}}],
        lambda r: isinstance(r[0]["_id"], dt.datetime))
    agg("e8b $dateTrunc day with timezone", [{"$project": {"d": {"$dateTrunc": {"date": "$at", "unit": "day", "timezone": "Europe/Berlin"}}}}, {"$limit": 2}],
        lambda r: isinstance(r[0]["d"], dt.datetime))
    agg("e9 $dateToString", [{"$project": {"s": {"$dateToString": {"date": "$at", "format": "%Y-%m-%d %H:%M"}}}}, {"$limit": 2}],
        lambda r: r[0]["s"] == "2026-03-01 10:00")
    agg("e9b $dateToString with timezone", [{"$project": {"s": {"$dateToString": {"date": "$at", "format": "%Y-%m-%d", "timezone": "America/New_York"}}}}, {"$limit": 1}],
        lambda r: r[0]["s"] == "2026-03-01")
    agg("e10 $group $avg/$min/$max/$push/$first", [{"$sort": {"_id": 1}}, {"$group": {"_id": None, "avg": {"$avg": "$minutes"}, "mn": {"$min": "$minutes"},
                                                                                     "mx": {"$max": "$minutes"}, "p": {"$push": "$_id"}, "f": {"$first": "$_id"}}}],
        lambda r: r[0]["mx"] == 49 and r[0]["f"] == 0 and len(r[0]["p"]) == 100, show_result=False)
    agg("e11 $addFields/$set, $unset, $replaceRoot", [{"$limit": 1}, {"$addFields": {"x": 1}}, {"$set": {"y": 2}}, {"$unset": "tags"},
                                                      {"$replaceRoot": {"newRoot": {"x": "$x", "y": "$y"}}}],
        lambda r: r == [{"x": 1, "y": 2}])
    agg("e12 $sortByCount", [{"$sortByCount": "$room"}], lambda r: len(r) == 3)
    agg("e13 $bucket", [{"$bucket": {"groupBy": "$minutes", "boundaries": [0, 10, 50], "default": "other"}}], lambda r: len(r) == 2)
    agg("e14 $group by $year/$month/$dayOfWeek", [{"$group": {"_id": {"y": {"$year": "$at"}, "m": {"$month": "$at"}, "w": {"$dayOfWeek": "$at"}}, "n": {"$sum": 1}}}],
        lambda r: len(r) > 1, show_result=False)
    agg("e15 $size/$filter/$in/$concat/$toLower exprs", [{"$limit": 1}, {"$project": {"a": {"$size": "$tags"}, "b": {"$filter": {"input": "$tags", "cond": {"$eq": ["$$this", "t0"]}}},
                                                                                     "c": {"$in": ["t0", "$tags"]}, "d": {"$concat": ["$user", "-", "$room"]},
                                                                                     "e": {"$toLower": "U"}}}],
        lambda r: r[0]["a"] == 2 and r[0]["d"] == "u0-r0")
    attempt("e16 $out", lambda: (list(c.aggregate([{"$match": {"user": "u0"}}, {"$out": "agg_out"}])), db["agg_out"].count_documents({}))[1], lambda n: n == 25)
    attempt("e17 $merge", lambda: (list(c.aggregate([{"$group": {"_id": "$user", "t": {"$sum": "$minutes"}}},
                                                     {"$merge": {"into": "agg_merge", "whenMatched": "replace", "whenNotMatched": "insert"}}])),
                                   db["agg_merge"].count_documents({}))[1], lambda n: n == 4)
    agg("e18 $unionWith", [{"$limit": 1}, {"$unionWith": {"coll": "users_agg"}}], lambda r: len(r) == 5, show_result=False)
    agg("e19 $sample", [{"$sample": {"size": 3}}], lambda r: len(r) == 3, show_result=False)
    agg("e20 $graphLookup", [{"$limit": 1}, {"$graphLookup": {"from": "users_agg", "startWith": "$user", "connectFromField": "_id", "connectToField": "_id", "as": "g"}}],
        lambda r: "g" in r[0], show_result=False)
    agg("e21 $densify/$fill (5.1+)", [{"$limit": 2}, {"$fill": {"output": {"minutes": {"value": 0}}}}], lambda r: True, show_result=False)
    r = attempt("e22 aggregate with allowDiskUse + cursor batchSize", lambda: list(c.aggregate([{"$sort": {"minutes": 1}}], allowDiskUse=True, batchSize=10)),
                lambda r: len(r) == 100)
    attempt("e23 aggregate explain", lambda: db.command("aggregate", "agg", pipeline=[{"$match": {"user": "u1"}}], explain=True), lambda r: True)


# ------------------------------------------------------------------ f


def probe_databases(client, prefix: str) -> None:
    name = f"{prefix}_emptydrop"
    r = attempt("f1 dropDatabase on a database that never existed", lambda: client[name].command("dropDatabase"), lambda r: r.get("ok") == 1)
    if r:
        show("f1 response", strip(r))
    client[name]["c"].insert_one({"x": 1})
    attempt("f2 drop a non-existent collection", lambda: client[name]["nope"].drop() or True, lambda r: True)
    r = attempt("f2b drop command on non-existent collection (raw)", lambda: client[name].command("drop", "nope2"), lambda r: True)
    if r is not None:
        show("f2b response", strip(r))
    ld = attempt("f3 listDatabases", lambda: client.admin.command("listDatabases"), lambda r: any(d["name"] == name for d in r["databases"]))
    if ld:
        show("f3 listDatabases (first 3 entries + keys)", {"databases": ld["databases"][:3], "keys": sorted(ld)})
    attempt("f3b listDatabases nameOnly + filter", lambda: client.list_database_names(), lambda r: name in r)
    attempt("f4 dropDatabase existing", lambda: client.drop_database(name) or name not in client.list_database_names(), lambda r: r)
    n = 100
    t0 = time.perf_counter()
    for i in range(n):
        db = client[f"{prefix}_many_{i}"]
        db["users"].create_index("email", unique=True)
        db["users"].insert_one({"_id": "x", "email": "e"})
    t1 = time.perf_counter()
    names = client.list_database_names()
    t2 = time.perf_counter()
    for i in range(n):
        client.drop_database(f"{prefix}_many_{i}")
    t3 = time.perf_counter()
    left = [x for x in client.list_database_names() if x.startswith(f"{prefix}_many_")]
    record(f"f5 {n} databases (createIndex + insert each), listDatabases, drop all",
           sum(1 for x in names if x.startswith(f"{prefix}_many_")) == n and not left,
           f"create {t1 - t0:.2f}s ({(t1 - t0) / n * 1000:.1f} ms/db), list {t2 - t1 : .3f}s, drop {t3 - t2:.2f}s ({(t3 - t2) / n * 1000:.1f} ms/db)")


# ------------------------------------------------------------------ g


def probe_speed(db) -> None:
    c = db["speed"]
    c.drop()
    total, batch = 10_000, 100
    t0 = time.perf_counter()
    for start in range(0, total, batch):
        ups = [{"q": {"_id": f"s{i}", "version": {"$lt": 1}}, "u": {"_id": f"s{i}", "version": 1, "title": f"t{i}", "user_id": f"u{i % 50}"},
                "upsert": True} for i in range(start, start + batch)]
        db.command(SON([("update", "speed"), ("updates", ups), ("ordered", False)]))
    t1 = time.perf_counter()
    record("g1 10,000 replacement upserts (fresh), batches of 100", c.count_documents({}) == total,
           f"{t1 - t0:.2f}s = {total / (t1 - t0):.0f} docs/s")
    t0 = time.perf_counter()
    for start in range(0, total, batch):
        ups = [{"q": {"_id": f"s{i}", "version": {"$lt": 2}}, "u": {"_id": f"s{i}", "version": 2, "title": f"t{i}", "user_id": f"u{i % 50}"},
                "upsert": True} for i in range(start, start + batch)]
        db.command(SON([("update", "speed"), ("updates", ups), ("ordered", False)]))
    t1 = time.perf_counter()
    record("g1b 10,000 replacement upserts (existing docs, newer version)", c.count_documents({"version": 2}) == total,
           f"{t1 - t0:.2f}s = {total / (t1 - t0):.0f} docs/s")
    t0 = time.perf_counter()
    nerr = 0
    for start in range(0, total, batch):
        ups = [{"q": {"_id": f"s{i}", "version": {"$lt": 1}}, "u": {"_id": f"s{i}", "version": 1}, "upsert": True} for i in range(start, start + batch)]
        r = db.command(SON([("update", "speed"), ("updates", ups), ("ordered", False)]))
        nerr += len(r.get("writeErrors", []))
    t1 = time.perf_counter()
    record("g1c 10,000 stale upserts (all 11000)", nerr == total, f"{t1 - t0:.2f}s = {total / (t1 - t0):.0f} stmts/s")
    t0 = time.perf_counter()
    for start in range(0, total, batch):
        ups = [{"q": {"_id": f"s{i}", "version": {"$lt": 3}}, "u": {"_id": f"s{i}", "version": 3, "title": f"t{i}", "user_id": f"u{i % 50}"},
                "upsert": True} for i in range(start, start + batch)]
        db.command(SON([("update", "speed"), ("updates", ups), ("ordered", False), ("writeConcern", {"w": 1, "j": True})]))
    t1 = time.perf_counter()
    record("g1d 10,000 replacement upserts, writeConcern {w:1, j:true}", c.count_documents({"version": 3}) == total,
           f"{t1 - t0:.2f}s = {total / (t1 - t0):.0f} docs/s")
    t0 = time.perf_counter()
    for i in range(1000):
        assert c.find_one({"_id": f"s{(i * 7) % total}"}) is not None
    t1 = time.perf_counter()
    record("g2 1,000 find_one by _id", True, f"{t1 - t0:.2f}s = {(t1 - t0):.3f} ms/op")
    big = db["speed_agg"]
    big.drop()
    t0 = time.perf_counter()
    for start in range(0, 100_000, 10_000):
        big.insert_many([{"u": f"u{i % 100}", "m": i % 60, "r": i % 7} for i in range(start, start + 10_000)], ordered=False)
    t1 = time.perf_counter()
    record("g3a insert_many 100,000 small docs (10 x 10,000)", big.estimated_document_count() == 100_000, f"{t1 - t0:.2f}s = {100_000 / (t1 - t0):.0f} docs/s")
    t0 = time.perf_counter()
    r = list(big.aggregate([{"$group": {"_id": "$u", "t": {"$sum": "$m"}, "n": {"$sum": 1}}}, {"$sort": {"t": -1}}]))
    t1 = time.perf_counter()
    record("g3 $group over 100,000 docs (100 groups)", len(r) == 100, f"{t1 - t0:.2f}s")
    t0 = time.perf_counter()
    r = list(big.aggregate([{"$match": {"u": "u7"}}, {"$group": {"_id": "$r", "t": {"$sum": "$m"}}}]))
    t1 = time.perf_counter()
    record("g3b $match(no index, 1%) + $group over 100,000 docs", len(r) == 7, f"{t1 - t0:.2f}s")
    big.create_index("u")
    t0 = time.perf_counter()
    r = list(big.aggregate([{"$match": {"u": "u7"}}, {"$group": {"_id": "$r", "t": {"$sum": "$m"}}}]))
    t1 = time.perf_counter()
    record("g3c same with an index on u", len(r) == 7, f"{t1 - t0:.2f}s")
    t0 = time.perf_counter()
    n = big.count_documents({"u": "u7"})
    t1 = time.perf_counter()
    record("g3d count_documents indexed (1,000 of 100,000)", n == 1000, f"{(t1 - t0) * 1000:.1f} ms")


# ------------------------------------------------------------------ h


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_bin() -> str:
    return subprocess.check_output([str(ROOT / "scripts" / "mongo.sh"), "bin"], text=True).strip()


def launch(binary: str, port: int, data: str, log) -> subprocess.Popen:
    if os.path.basename(binary) == "mongod":
        args = [binary, "--bind_ip", "127.0.0.1", "--port", str(port), "--dbpath", data]
    else:
        args = [binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", data]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ping(uri: str, secs: float = 30) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < secs:
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=500) as c:
                c.admin.command("ping")
                return time.perf_counter() - t0
        except PyMongoError:
            time.sleep(0.1)
    raise TimeoutError(uri)


def probe_restart() -> None:
    binary = server_bin()
    tmp = tempfile.mkdtemp(prefix="probe-mongo-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}"
    with open(os.path.join(tmp, "server.log"), "ab") as log:
        p = launch(binary, port, data, log)
        try:
            startup = wait_ping(uri)
            record("h0 private server started", True, f"{binary} ready in {startup:.2f}s")
            client = MongoClient(uri, serverSelectionTimeoutMS=3000, retryWrites=True, retryReads=True)
            col = client["probe_h"]["c"]
            col_j = col.with_options(write_concern=WriteConcern(w=1, j=True))
            col.insert_many([{"_id": i, "v": i} for i in range(1000)])
            col.create_index("v", unique=True)
            time.sleep(1.0)  # let the server flush its log (see h2b)
            expected = 1000
            for sig, label in ((signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM")):
                # acknowledged writes immediately before the signal: default w:1 vs j:true
                # (j:true first: a later j:true flush would also persist the earlier w:1 write)
                col_j.replace_one({"_id": f"j-{label}"}, {"_id": f"j-{label}", "v": -1000 - len(RESULTS)}, upsert=True)
                col.replace_one({"_id": f"w1-{label}"}, {"_id": f"w1-{label}", "v": -1 - len(RESULTS)}, upsert=True)
                p.send_signal(sig)
                p.wait(timeout=30)
                t0 = time.perf_counter()
                try:
                    col.find_one({"_id": 1})
                    record(f"h1 {label}: op while server down", False, "unexpectedly succeeded")
                except PyMongoError as e:
                    record(f"h1 {label}: op while server down raises", True,
                           f"{type(e).__name__} after {time.perf_counter() - t0:.1f}s: {str(e).splitlines()[0][:160]}")
                p = launch(binary, port, data, log)
                startup = wait_ping(uri)
                t0 = time.perf_counter()
                try:
                    n_base = col.count_documents({"_id": {"$type": "int"}})
                    first = time.perf_counter() - t0
                    w1 = col.find_one({"_id": f"w1-{label}"}) is not None
                    jj = col.find_one({"_id": f"j-{label}"}) is not None
                    idx = [i["name"] for i in col.list_indexes()]
                    record(f"h2 {label}: same client object works after restart on same port+storage",
                           True, f"restart ready in {startup:.2f}s; first op {first:.2f}s")
                    record(f"h2a {label}: data from >1 s before the kill persisted (docs + indexes)",
                           n_base == expected and "v_1" in idx, f"count={n_base}/{expected} indexes={idx}")
                    record(f"h2b {label}: w:1 (no j) write acked just before the kill persisted", w1,
                           "" if w1 else "LOST: acknowledged w:1 write did not survive")
                    record(f"h2c {label}: j:true write acked just before the kill persisted", jj)
                except PyMongoError as e:
                    record(f"h2 {label}: same client after restart", False, f"{type(e).__name__}: {str(e)[:200]}")
            # A write in flight during the kill (unacknowledged outcome): does the client retry?
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            t0 = time.perf_counter()

            def restart_later():
                time.sleep(1.0)
                return launch(binary, port, data, log)

            import threading

            holder = {}
            th = threading.Thread(target=lambda: holder.setdefault("p", restart_later()))
            th.start()
            try:
                c2 = MongoClient(uri, serverSelectionTimeoutMS=15000)
                c2["probe_h"]["c"].insert_one({"_id": "during-outage", "v": 20_000})
                record("h3 new op issued while down waits for server selection and succeeds after restart", True,
                       f"{time.perf_counter() - t0:.2f}s (serverSelectionTimeoutMS=15000)")
                c2.close()
            except PyMongoError as e:
                record("h3 op issued while down, server back within selection timeout", False, f"{type(e).__name__}: {str(e)[:200]}")
            th.join()
            p = holder["p"]
            client.close()
        finally:
            p.kill()
            p.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("uri", nargs="?")
    ap.add_argument("--only", default="a,b,c,d,e,f,g,h")
    ap.add_argument("--skip-restart", action="store_true")
    args = ap.parse_args()
    uri = args.uri or (ROOT / ".local" / "mongo" / "uri").read_text().strip()
    only = set(args.only.split(","))
    if args.skip_restart:
        only.discard("h")
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    info = client.admin.command("buildInfo")
    print(f"server {uri}: version {info.get('version')} secantus {info.get('secantusVersion', '-')}")
    prefix = f"probe_{uuid.uuid4().hex[:8]}"
    db = client[prefix]
    try:
        if "a" in only:
            print("\n== a. replacement upserts")
            probe_upserts(db, "replace")
        if "b" in only:
            print("\n== b. $set upserts")
            probe_upserts(db, "set")
        if "c" in only:
            print("\n== c. indexes")
            probe_indexes(db)
        if "d" in only:
            print("\n== d. queries")
            probe_queries(db)
        if "e" in only:
            print("\n== e. aggregation")
            probe_aggregation(db)
        if "f" in only:
            print("\n== f. databases")
            probe_databases(client, prefix)
        if "g" in only:
            print("\n== g. speed")
            probe_speed(db)
        if "h" in only:
            print("\n== h. kill / restart")
            probe_restart()
    finally:
        client.drop_database(prefix)
        client.close()
    print("\n== summary")
    for name, status, detail in RESULTS:
        print(f"{status} {name}" + (f" | {detail}" if detail else ""))
    fails = sum(1 for _, s, _ in RESULTS if s.startswith("FAIL"))
    print(f"{len(RESULTS) - fails} ok, {fails} failing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
