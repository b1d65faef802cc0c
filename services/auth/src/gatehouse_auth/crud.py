"""Account storage. Keyword-only functions over a session, as in the FastAPI template."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gatehouse_auth.errors import AccountExists
from gatehouse_auth.models import Account, AccountCreate, Role, normalize_email
from gatehouse_auth.passwords import PasswordHasher

MAX_PAGE_SIZE = 100


def get_account(*, session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def get_account_by_email(*, session: Session, email: str) -> Account | None:
    return session.exec(select(Account).where(Account.email == normalize_email(email))).first()


def _taken_field(*, session: Session, email: str, username: str) -> str | None:
    if get_account_by_email(session=session, email=email) is not None:
        return "email"
    same_name = select(Account.id).where(func.lower(Account.username) == username.lower())
    if session.exec(same_name).first() is not None:
        return "username"
    return None


def create_account(
    *,
    session: Session,
    account_in: AccountCreate,
    hasher: PasswordHasher,
    role: Role = Role.user,
) -> Account:
    """Insert an account; :class:`AccountExists` when the email or username is taken.

    The password is hashed first, taken or not: answering a taken email without
    the bcrypt work would take milliseconds against a new one's hundreds, and
    tell anyone timing sign-ups which emails have accounts. The unique indexes
    decide the race between two signups that both passed the look-up.
    """
    hashed = hasher.hash(account_in.password)
    taken = _taken_field(session=session, email=account_in.email, username=account_in.username)
    if taken:
        raise AccountExists(taken)
    account = Account(
        username=account_in.username,
        email=account_in.email,
        hashed_password=hashed,
        role=role.value,
    )
    session.add(account)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        taken = _taken_field(session=session, email=account_in.email, username=account_in.username)
        raise AccountExists(taken or "email") from None
    session.refresh(account)
    return account


def authenticate(
    *, session: Session, email: str, password: str, hasher: PasswordHasher
) -> Account | None:
    """The account when the password matches; unknown emails cost a bcrypt check too.

    A hash made at another cost (the cost was raised since) is replaced now,
    the only moment the plain password is at hand.
    """
    account = get_account_by_email(session=session, email=email)
    # Always one bcrypt check (against a dummy hash for an unknown email).
    matched = hasher.verify(password, account.hashed_password if account else None)
    if account is None or not matched:
        return None
    if hasher.needs_rehash(account.hashed_password):
        account.hashed_password = hasher.hash(password)
        session.add(account)
        session.commit()
        session.refresh(account)
    return account


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_accounts(
    *, session: Session, limit: int, offset: int, search: str | None = None
) -> tuple[list[Account], int]:
    """One page, newest first, and the total matching ``search`` (username or email)."""
    query = select(Account)
    count = select(func.count()).select_from(Account)
    if search:
        pattern = f"%{_escape_like(search.lower())}%"
        matches = or_(
            func.lower(Account.username).like(pattern, escape="\\"),
            col(Account.email).like(pattern, escape="\\"),
        )
        query = query.where(matches)
        count = count.where(matches)
    page = query.order_by(col(Account.created_at).desc(), col(Account.id).desc())
    items = list(session.exec(page.offset(offset).limit(min(limit, MAX_PAGE_SIZE))).all())
    return items, int(session.exec(count).one())


def ensure_admin(
    *, session: Session, email: str, password: str, username: str, hasher: PasswordHasher
) -> tuple[Account, bool]:
    """Make ``email`` an admin with ``password``: created, or promoted and re-keyed.

    Returns the account and whether it was created.
    """
    account = get_account_by_email(session=session, email=email)
    if account is None:
        created = create_account(
            session=session,
            account_in=AccountCreate(username=username, email=email, password=password),
            hasher=hasher,
            role=Role.admin,
        )
        return created, True
    changed = False
    if account.role != Role.admin.value:
        account.role = Role.admin.value
        changed = True
    if not hasher.verify(password, account.hashed_password) or hasher.needs_rehash(
        account.hashed_password
    ):
        account.hashed_password = hasher.hash(password)
        changed = True
    if changed:
        session.add(account)
        session.commit()
        session.refresh(account)
    return account, False
