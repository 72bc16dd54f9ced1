"""Extensions are created once here and bound to an app in the factory (``init_app``)."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# Every form and htmx request of the UI; the token-authenticated APIs are exempted in create_app.
csrf = CSRFProtect()
