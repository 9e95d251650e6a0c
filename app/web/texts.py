"""The console's words, in Vietnamese (the default) and English. Domain errors come
from app.core.i18n like the API's problem details."""

from __future__ import annotations

from app.core import i18n

TEXTS: dict[str, tuple[str, str]] = {
    # key: (vi, en)
    "app": ("Bảng điều khiển xử lý phản ánh", "Report handling console"),
    "skip": ("Bỏ qua, đến nội dung chính", "Skip to main content"),
    "nav": ("Điều hướng chính", "Main navigation"),
    "queue": ("Hàng đợi", "Queue"),
    "map": ("Bản đồ", "Map"),
    "dispatch": ("Điều phối", "Dispatch"),
    "index": ("Chỉ số phục vụ", "Service index"),
    "staff": ("Cán bộ", "Staff"),
    "audit": ("Nhật ký", "Audit trail"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "email": ("Thư điện tử", "Email"),
    "password": ("Mật khẩu", "Password"),
    "language": ("Ngôn ngữ", "Language"),
    "other_language": ("English", "Tiếng Việt"),
    "signed_in_as": ("Đang đăng nhập:", "Signed in as"),
    "unit": ("Đơn vị", "Unit"),
    "all_units": ("Tất cả đơn vị được xem", "All my units"),
    "status": ("Trạng thái", "Status"),
    "any": ("Tất cả", "Any"),
    "category": ("Lĩnh vực", "Category"),
    "filter": ("Lọc", "Filter"),
    "filters": ("Bộ lọc", "Filters"),
    "open": ("Đang mở", "Open"),
    "overdue": ("Quá hạn", "Overdue"),
    "due_soon": ("Đến hạn trong 1 ngày làm việc", "Due within 1 working day"),
    "code": ("Mã", "Code"),
    "kind": ("Loại", "Kind"),
    "description": ("Nội dung", "Description"),
    "area": ("Địa bàn", "Area"),
    "received": ("Tiếp nhận", "Received"),
    "due": ("Hạn xử lý", "Due"),
    "supporters": ("Người ủng hộ", "Supporters"),
    "no_deadline": ("Chưa có hạn", "No deadline"),
    "late": ("QUÁ HẠN", "LATE"),
    "on_time": ("Còn hạn", "On time"),
    "empty_queue": ("Không có phản ánh nào khớp bộ lọc.", "No report matches these filters."),
    "next_page": ("Trang sau", "Next page"),
    "first_page": ("Trang đầu", "First page"),
    "filed_by_staff": ("Cán bộ nhập hộ", "Filed by staff"),
    "hidden_text": ("(nội dung đã ẩn)", "(text hidden)"),
    "report": ("Phản ánh", "Report"),
    "location": ("Vị trí", "Location"),
    "address": ("Địa chỉ", "Address"),
    "photos": ("Ảnh", "Photos"),
    "no_photos": ("Không có ảnh.", "No photos."),
    "geotag_far": (
        "Cảnh báo: vị trí chụp ảnh cách nơi phản ánh hơn 500 m",
        "Warning: photo taken more than 500 m from the reported place",
    ),
    "taken_long_before": (
        "Cảnh báo: ảnh chụp từ lâu trước khi phản ánh",
        "Warning: photo taken long before the report",
    ),
    "hidden": ("Đã ẩn", "Hidden"),
    "timeline": ("Diễn biến xử lý", "Timeline"),
    "public": ("Công khai", "Public"),
    "internal": ("Nội bộ", "Internal"),
    "reporter": ("Người phản ánh", "Reporter"),
    "reporter_hidden": (
        "Chỉ lãnh đạo đơn vị, điều phối viên và quản trị xem được liên hệ người phản ánh.",
        "Only managers, dispatchers and admins see the reporter's contact.",
    ),
    "phone": ("Điện thoại", "Phone"),
    "name": ("Họ tên", "Name"),
    "asked_anonymous": (
        "Người dân đề nghị ẩn danh với công chúng.",
        "The resident asked to stay anonymous to the public.",
    ),
    "actions": ("Xử lý", "Actions"),
    "accept": ("Tiếp nhận xử lý", "Start handling"),
    "reply": ("Trả lời người dân (công khai)", "Reply to the resident (public)"),
    "note": ("Ghi chú nội bộ", "Internal note"),
    "info_request": ("Đề nghị bổ sung thông tin", "Ask for more information"),
    "message": ("Nội dung", "Message"),
    "send": ("Gửi", "Send"),
    "transfer": ("Chuyển đơn vị", "Transfer to another unit"),
    "assign": ("Giao đơn vị", "Assign to a unit"),
    "to_unit": ("Đơn vị nhận", "Receiving unit"),
    "reason": ("Lý do", "Reason"),
    "extension": ("Gia hạn (lãnh đạo)", "Extend the deadline (manager)"),
    "extension_request": ("Đề nghị gia hạn", "Request an extension"),
    "extension_pending": ("Đề nghị gia hạn đang chờ", "Extension request pending"),
    "approve": ("Đồng ý", "Approve"),
    "decline": ("Từ chối", "Decline"),
    "new_due_date": ("Hạn mới (ngày làm việc)", "New deadline (a working day)"),
    "resolve": ("Hoàn thành xử lý", "Resolve"),
    "answer": ("Kết quả xử lý", "Answer"),
    "resolution_photos": ("Ảnh kết quả (không bắt buộc)", "Photos of the result (optional)"),
    "resolution_photo": ("Ảnh kết quả xử lý", "Photo of the result"),
    "reject": ("Từ chối phản ánh", "Reject"),
    "merge": ("Gộp vào phản ánh trùng", "Merge as a duplicate"),
    "original_code": ("Mã phản ánh gốc", "Code of the original report"),
    "moderation": ("Kiểm duyệt", "Moderation"),
    "hide_text": ("Ẩn nội dung", "Hide the text"),
    "hide_photo": ("Ẩn ảnh", "Hide this photo"),
    "no_actions": (
        "Không còn thao tác nào cho phản ánh này.",
        "No action is left for this report.",
    ),
    "done": ("Đã lưu.", "Saved."),
    "back": ("Quay lại", "Back"),
    "error": ("Không thực hiện được", "That did not work"),
    "transfers": ("Số lần chuyển", "Transfers"),
    "escalated": ("Đã báo cáo cấp trên", "Escalated"),
    "original_due": ("Hạn ban đầu", "Original deadline"),
    "dispatcher_queue": ("Phản ánh chờ điều phối", "Reports waiting for a dispatcher"),
    "unrouted": (
        "Chưa định tuyến (hệ thống sẽ tự chuyển)",
        "Not yet routed (the worker routes them)",
    ),
    "route_now": ("Định tuyến ngay", "Route them now"),
    "route_now_help": (
        "Nếu hệ thống xử lý nền bị chậm hoặc ngừng: chuyển ngay các phản ánh đang chờ "
        "theo cùng quy tắc định tuyến.",
        "When the background workers are down or behind: assign the waiting reports now, "
        "by the same routing rules.",
    ),
    "routed_n": ("Đã định tuyến {n} phản ánh.", "Routed {n} reports."),
    "index_title": ("Chỉ số phục vụ của đơn vị", "The unit's service index"),
    "period": ("Kỳ", "Period"),
    "all_time": ("Từ trước đến nay", "All time"),
    "last_30": ("30 ngày qua", "Last 30 days"),
    "received_n": ("Tiếp nhận", "Received"),
    "resolved_n": ("Đã giải quyết", "Resolved"),
    "on_time_pct": ("Đúng hạn (%)", "On time (%)"),
    "satisfaction_pct": ("Hài lòng (%)", "Satisfied (%)"),
    "open_overdue": ("Đang quá hạn", "Open and overdue"),
    "median_days": ("Trung vị ngày làm việc", "Median working days"),
    "trend": ("Xu hướng theo tháng", "Monthly trend"),
    "no_figures": ("Chưa có số liệu.", "No figures yet."),
    "staff_filed": ("Do cán bộ nhập hộ (tính riêng)", "Filed by staff (counted apart)"),
    "role": ("Vai trò", "Role"),
    "when": ("Thời điểm", "When"),
    "who": ("Người thực hiện", "Who"),
    "what": ("Thao tác", "Action"),
    "object": ("Đối tượng", "Object"),
    "from_where": ("Từ địa chỉ", "From"),
    "older": ("Cũ hơn", "Older"),
    "map_help": (
        "Bản đồ phản ánh đang mở của đơn vị. Danh sách bên dưới có cùng nội dung "
        "cho người dùng bàn phím và trình đọc màn hình.",
        "Open reports of your units. The list below has the same content "
        "for keyboard and screen-reader users.",
    ),
    "reports_n": ("phản ánh", "reports"),
    "counts": ("Số lượng", "Counts"),
    "inbox": ("Thông báo", "Notifications"),
    "unread": ("chưa đọc", "unread"),
    "mark_all_read": ("Đánh dấu đã đọc tất cả", "Mark all read"),
    "open_item": ("Mở", "Open"),
    "no_notifications": ("Chưa có thông báo.", "No notifications yet."),
    "read": ("Đã đọc", "Read"),
    "rating": ("Người dân đánh giá", "Resident's rating"),
    "ratings": ("Đánh giá của người dân", "The resident's rating"),
    "no_comment": ("không có ý kiến", "no comment"),
    "rating_comments": ("Ý kiến của người dân khi đánh giá", "Residents' comments on ratings"),
    "no_rating_comments": ("Chưa có ý kiến nào.", "No comments yet."),
}

RATING = {
    "satisfied": ("Hài lòng", "Satisfied"),
    "accept": ("Chấp nhận", "Acceptable"),
    "not_satisfied": ("Không hài lòng", "Not satisfied"),
}

STATUS = {
    "submitted": ("Mới gửi", "Submitted"),
    "assigned": ("Đã giao", "Assigned"),
    "in_progress": ("Đang xử lý", "In progress"),
    "reopened": ("Mở lại", "Reopened"),
    "resolved": ("Đã giải quyết", "Resolved"),
    "closed": ("Đã đóng", "Closed"),
    "rejected": ("Từ chối", "Rejected"),
    "duplicate": ("Trùng", "Duplicate"),
    "withdrawn": ("Đã rút", "Withdrawn"),
}

# a status named in a problem's detail (e.g. a second reopen: "from 'Assigned' to
# 'Reopened'") in the reader's words, on the API as on the pages
i18n.register_value_names(("current", "target"), STATUS)

KIND = {
    "complaint": ("Phản ánh", "Complaint"),
    "petition": ("Kiến nghị", "Petition"),
    "initiative": ("Sáng kiến", "Initiative"),
}

EVENT = {
    "transition": ("Chuyển trạng thái", "Status change"),
    "reply": ("Trả lời", "Reply"),
    "note": ("Ghi chú nội bộ", "Internal note"),
    "info_request": ("Đề nghị bổ sung", "Information requested"),
    "comment": ("Người dân bổ sung", "Resident's comment"),
    "photos_added": ("Người dân thêm ảnh", "Resident added photos"),
    "transferred": ("Chuyển đơn vị", "Transferred"),
    "assigned": ("Giao đơn vị", "Assigned"),
    "extended": ("Gia hạn", "Extended"),
    "extension_asked": ("Đề nghị gia hạn", "Extension requested"),
    "extension_declined": ("Từ chối gia hạn", "Extension declined"),
    "overdue": ("Quá hạn", "Overdue"),
    "escalated": ("Báo cáo cấp trên", "Escalated"),
    "rated": ("Đánh giá", "Rated"),
}

# what a transfer or an extension was refused from: named like the statuses
i18n.register_value_names(
    ("target",), {key: EVENT[key] for key in ("transferred", "extended", "assigned")}
)


def text(key: str, lang: str) -> str:
    pair = TEXTS.get(key) or STATUS.get(key) or KIND.get(key) or EVENT.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def pick(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return ""
    pair = table.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]
