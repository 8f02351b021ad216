"""The baseline glasshouse is compared with: the same API shape on the stack
a FastAPI production service typically runs (FastAPI + uvicorn with uvloop and
httptools, JWT HS256 with PyJWT, bcrypt via passlib, SQLite, and a Prometheus
middleware recording a request-duration histogram per route template).

It implements what the benchmark drives: sign-up, login, me, item create and
item read, with the same JSON bodies, status codes and ownership rule (another
user's item is 404). It is a benchmark baseline, not part of the product.

Run: DB_PATH=/tmp/fa.db JWT_SECRET=... /usr/bin/python3 -m uvicorn app:app \
       --app-dir bench/fastapi --loop uvloop --http httptools --workers 1
"""

import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from passlib.context import CryptContext
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import BaseModel, Field

SECRET = os.environ.get("JWT_SECRET", "baseline-development-key-32-bytes!!")
TTL = timedelta(minutes=30)
ISSUER = "glasshouse"

pwd = CryptContext(schemes=["bcrypt"], deprecated="auto")
bearer = HTTPBearer(auto_error=False)

db = sqlite3.connect(os.environ.get("DB_PATH", "fastapi-baseline.db"), check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA foreign_keys=ON")
db.executescript(
    """
    CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS items_owner_id ON items (owner_id, id);
    """
)

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["method", "route", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10),
)

app = FastAPI(title="glasshouse baseline (FastAPI)")


@app.middleware("http")
async def prometheus_middleware(request: Request, call_next):
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    REQUEST_DURATION.labels(request.method, route.path if route else "unmatched", str(response.status_code)).observe(
        time.perf_counter() - start
    )
    return response


class SignupIn(BaseModel):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_]+$")
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=8, max_length=128)


class LoginIn(BaseModel):
    username: str
    password: str


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class UserOut(BaseModel):
    id: int
    username: str
    email: str
    created_at: datetime


class ItemOut(BaseModel):
    id: int
    owner_id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def current_user(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
    if creds is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = jwt.decode(creds.credentials, SECRET, algorithms=["HS256"], issuer=ISSUER)
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return int(claims["sub"])


@app.post("/api/v1/users", status_code=201, response_model=UserOut)
async def signup(body: SignupIn):
    try:
        cur = db.execute(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (body.username, body.email, pwd.hash(body.password), now()),
        )
    except sqlite3.IntegrityError:
        raise HTTPException(409, "username or email taken")
    row = db.execute("SELECT id, username, email, created_at FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
    return dict(zip(("id", "username", "email", "created_at"), row))


@app.post("/api/v1/auth/login", response_model=TokenOut)
async def login(body: LoginIn):
    row = db.execute("SELECT id, password_hash FROM users WHERE username = ?", (body.username,)).fetchone()
    if row is None or not pwd.verify(body.password, row[1]):
        raise HTTPException(401, "username or password is incorrect")
    issued = datetime.now(timezone.utc)
    token = jwt.encode(
        {"sub": str(row[0]), "iss": ISSUER, "iat": issued, "exp": issued + TTL, "type": "access"}, SECRET, algorithm="HS256"
    )
    return {"access_token": token, "token_type": "bearer", "expires_in": int(TTL.total_seconds())}


@app.get("/api/v1/users/me", response_model=UserOut)
async def me(user_id: int = Depends(current_user)):
    row = db.execute("SELECT id, username, email, created_at FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise HTTPException(401, "invalid token")
    return dict(zip(("id", "username", "email", "created_at"), row))


ITEM_COLUMNS = ("id", "owner_id", "name", "description", "created_at", "updated_at")


@app.post("/api/v1/items", status_code=201, response_model=ItemOut)
async def item_create(body: ItemIn, user_id: int = Depends(current_user)):
    t = now()
    cur = db.execute(
        "INSERT INTO items (owner_id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, body.name, body.description, t, t),
    )
    return dict(zip(ITEM_COLUMNS, (cur.lastrowid, user_id, body.name, body.description, t, t)))


@app.get("/api/v1/items/{item_id}", response_model=ItemOut)
async def item_get(item_id: int, user_id: int = Depends(current_user)):
    row = db.execute(
        "SELECT id, owner_id, name, description, created_at, updated_at FROM items WHERE id = ? AND owner_id = ?",
        (item_id, user_id),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "item not found")
    return dict(zip(ITEM_COLUMNS, row))


@app.get("/health")
async def health():
    return {"status": "healthy"}


@app.get("/metrics")
async def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
