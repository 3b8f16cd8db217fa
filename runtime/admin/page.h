/* admin/-private: the admin home page (GET /), compiled in (admin/page.c). */
#ifndef ML_ADMIN_PAGE_H
#define ML_ADMIN_PAGE_H

/* One HTML document with its CSS and JS inline: no other asset is ever fetched. It reads
 * /server_info and polls /stats.json with the admin token the user gives it (kept in the tab's
 * sessionStorage, sent as Authorization: Bearer, never in a URL). */
extern const char ml_admin_page_html[];

#endif
