"""Reads behind the product's pages that span apps: each role's home and the KPI page."""

from home.selectors.home import home_page
from home.selectors.kpi import featured_goal, kpi_page

__all__ = ["featured_goal", "home_page", "kpi_page"]
